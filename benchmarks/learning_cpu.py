"""The learning claim of the offline main job, end to end, with its wall time.

    python benchmarks/learning_cpu.py [--output-dir outputs/learning-cpu] [--fresh]
    python benchmarks/learning_cpu.py --compare [--baseline-flags "..." | --baseline-commit 7ce4f65]

Runs `python -m trainers.grpo --env countdown-3to4` exactly as a new user does (embedded default
policy, warm start included unless cached; `--fresh` uses an empty cache so the warm start is
timed too), then reads demo_summary.json: held-out accuracy before and after GRPO on the same
500 test tasks x 4 samples, and the one-sided exact sign test over tasks. Exits 1 unless accuracy rose
with p < 0.01.

`--compare --baseline-commit 7ce4f65` runs the main job exactly as it was when issue #15 measured it (that
commit's code, from `git archive`) as the baseline instead.

`--compare` runs the baseline first (`--warm-start-steps 400 --max_steps 120`: the main job's schedule
before its warm start was shortened; `--baseline-commit` for older code itself), then today's,
both from an empty cache on this machine, and prints the wall-time ratio new / baseline and both
sign tests. Run nothing else on the machine meanwhile: the ratio is the point, and it is only
meaningful when both runs saw the same cores. Each run also reports its CPU time (user + system of
its processes) and the hypervisor's steal share of the box meanwhile (/proc/stat): on a virtual
machine whose neighbours take CPU away at times, wall time stretches but CPU time does not, so the
CPU-time ratio stays comparable where the wall-time ratio does not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

BASELINE_FLAGS = "--warm-start-steps 400 --max_steps 120"  # the main job before its warm start was shortened
ISSUE_COMMIT = "7ce4f65"  # the last commit before the round that opened issue #15


def checkout(commit: str) -> str:
    """The repository's files at `commit` in a fresh folder (git archive: no worktree to clean up)."""
    folder = tempfile.mkdtemp(prefix=f"rg-{commit[:12]}-")
    archive = subprocess.run(["git", "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def cpu_counters() -> tuple[int, int]:
    """(steal, total) jiffies of the whole box from /proc/stat; (0, 0) where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


@dataclass(frozen=True)
class Timing:
    """CPU seconds are not inflated by steal the way wall time is, so on a box whose hypervisor takes
    CPU away at times, the CPU-time ratio is the comparable one."""

    wall_s: float
    cpu_s: float  # user + system of the job's processes
    steal: float  # the hypervisor's share of the box's CPU meanwhile


def run_main_job(output_dir: str, fresh: bool, flags: str = "", code: str | None = None
                 ) -> tuple[Timing, dict[str, Any] | None]:
    """Timing of one main job and its demo_summary.json (None if it failed). `code`: a checkout to
    run instead of this one (`python -m` puts it first on sys.path, ahead of the editable install)."""
    env = dict(os.environ)
    if fresh:
        env["REASONGYM_CACHE"] = tempfile.mkdtemp(prefix="rg-cache-")
    output_dir = os.path.abspath(output_dir)
    start, usage, (steal, total) = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN), cpu_counters()
    proc = subprocess.run([sys.executable, "-m", "trainers.grpo", "--env", "countdown-3to4", "--output_dir",
                           output_dir, *shlex.split(flags)], env=env, cwd=code)
    after, (steal_after, total_after) = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_counters()
    timing = Timing(wall_s=time.perf_counter() - start,
                  cpu_s=after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
                  steal=(steal_after - steal) / max(1, total_after - total))
    if proc.returncode:
        print(f"the main job ({flags or 'default'}) failed with exit code {proc.returncode}")
        return timing, None
    with open(os.path.join(output_dir, "demo_summary.json")) as f:
        return timing, json.load(f)


def report(name: str, timing: Timing, summary: dict[str, Any]) -> None:
    before, after, test = summary["before"], summary["after"], summary["sign_test"]
    print(f"[{name}] wall time: {timing.wall_s / 60:.1f} min; CPU time {timing.cpu_s / 60:.1f} min; "
          f"hypervisor steal meanwhile {timing.steal:.0%} of the box's CPU")
    print(f"[{name}] held-out accuracy at T={summary['temperature']}: {before['accuracy']:.3f} -> "
          f"{after['accuracy']:.3f} ({summary['samples']} samples); greedy {before['greedy_accuracy']:.3f} -> "
          f"{after['greedy_accuracy']:.3f}")
    print(f"[{name}] sign test over {test['tasks']} tasks: {test['improved']} better, {test['worsened']} worse, "
          f"one-sided p = {test['p_value']:.2g}")


def claim_holds(summary: dict[str, Any], alpha: float) -> bool:
    return summary["after"]["accuracy"] > summary["before"]["accuracy"] and summary["sign_test"]["p_value"] < alpha


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", default=os.path.join("outputs", "learning-cpu"))
    parser.add_argument("--fresh", action="store_true", help="empty policy cache: time the warm start too")
    parser.add_argument("--compare", action="store_true",
                        help="run the baseline main job and today's, both fresh, and print the wall-time ratio")
    parser.add_argument("--baseline-flags", default=BASELINE_FLAGS, help="extra flags of the baseline run")
    parser.add_argument("--baseline-commit", help="run the main job of this commit as the baseline, unchanged "
                        f"(e.g. {ISSUE_COMMIT}, main when issue #15 measured 19 min 32 s) instead of today's "
                        "code with --baseline-flags")
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()
    if not args.compare:
        timing, summary = run_main_job(args.output_dir, args.fresh)
        if summary is None:
            return 1
        report("main job", timing, summary)
        ok = claim_holds(summary, args.alpha)
        print("learning claim holds" if ok else "learning claim does NOT hold")
        return 0 if ok else 1

    code = checkout(args.baseline_commit) if args.baseline_commit else None
    flags = "" if code else args.baseline_flags
    base_time, base = run_main_job(os.path.join(args.output_dir, "baseline"), True, flags, code)
    new_time, new = run_main_job(os.path.join(args.output_dir, "new"), True)
    if base is None or new is None:
        return 1
    report(f"baseline: commit {args.baseline_commit}" if code else f"baseline: {flags}", base_time, base)
    report("today's main job", new_time, new)
    as_significant = new["sign_test"]["p_value"] <= base["sign_test"]["p_value"]
    print(f"CPU-time ratio new / baseline: {new_time.cpu_s / base_time.cpu_s:.2f} (steal-free measure of the work)")
    print(f"wall-time ratio new / baseline: {new_time.wall_s / base_time.wall_s:.2f} (target <= 0.6; "
          f"comparable only when both steal figures are low); held-out gain "
          f"{'at least as' if as_significant else 'LESS'} significant (p {new['sign_test']['p_value']:.2g} vs "
          f"{base['sign_test']['p_value']:.2g})")
    return 0 if claim_holds(new, args.alpha) else 1


if __name__ == "__main__":
    sys.exit(main())
