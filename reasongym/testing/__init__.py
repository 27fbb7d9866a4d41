"""Testing kit: `check_env` (the API contract), `check_verifier` (the verifier contract), hypothesis
strategies and reward-hacking probes.

    from reasongym.testing import check_verifier
    def test_my_env():
        check_verifier(rg.make("my-task"))      # raises with minimal examples under pytest
"""

from reasongym.testing.env_checker import EnvCheckError, check_env
from reasongym.testing.check import CheckResult, VerifierCheckFailed, VerifierReport, check_verifier
from reasongym.testing.probes import PROBES, ProbeResult, run_probes

__all__ = [
    "PROBES",
    "CheckResult",
    "EnvCheckError",
    "ProbeResult",
    "VerifierCheckFailed",
    "VerifierReport",
    "check_env",
    "check_verifier",
    "run_probes",
]
