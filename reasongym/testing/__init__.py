"""Verifier testing kit: hypothesis strategies, `check_verifier`, reward-hacking probes.

    from reasongym.testing import check_verifier
    def test_my_env():
        check_verifier(rg.make("my-task"))      # raises with minimal examples under pytest
"""

from reasongym.testing.check import CheckResult, VerifierCheckFailed, VerifierReport, check_verifier
from reasongym.testing.probes import PROBES, ProbeResult, run_probes

__all__ = [
    "PROBES",
    "CheckResult",
    "ProbeResult",
    "VerifierCheckFailed",
    "VerifierReport",
    "check_verifier",
    "run_probes",
]
