"""The learning claim of the offline main job, end to end, with its wall time.

    python benchmarks/learning_cpu.py [--output-dir outputs/learning-cpu] [--fresh]

Runs `python -m trainers.grpo --env countdown-3to4` exactly as a new user does (embedded default
policy, warm start included unless cached; `--fresh` uses an empty cache so the warm start is
timed too), then reads demo_summary.json: held-out accuracy before and after GRPO on the same
500 test tasks x 4 samples, and the one-sided exact sign test over tasks. Exits 1 unless accuracy rose
with p < 0.01.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", default=os.path.join("outputs", "learning-cpu"))
    parser.add_argument("--fresh", action="store_true", help="empty policy cache: time the warm start too")
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()
    env = dict(os.environ)
    if args.fresh:
        env["REASONGYM_CACHE"] = tempfile.mkdtemp(prefix="rg-cache-")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "trainers.grpo", "--env", "countdown-3to4", "--output-dir",
                           args.output_dir], env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        print(f"the main job failed with exit code {proc.returncode}")
        return 1
    with open(os.path.join(args.output_dir, "demo_summary.json")) as f:
        summary = json.load(f)
    before, after, test = summary["before"], summary["after"], summary["sign_test"]
    print(f"wall time (warm start {'included' if args.fresh else 'cached or included'}): {wall / 60:.1f} min")
    print(f"held-out accuracy at T={summary['temperature']}: {before['accuracy']:.3f} -> {after['accuracy']:.3f} "
          f"({summary['samples']} samples); greedy {before['greedy_accuracy']:.3f} -> {after['greedy_accuracy']:.3f}")
    print(f"sign test over {test['tasks']} tasks: {test['improved']} better, {test['worsened']} worse, "
          f"one-sided p = {test['p_value']:.2g}")
    ok = after["accuracy"] > before["accuracy"] and test["p_value"] < args.alpha
    print("learning claim holds" if ok else "learning claim does NOT hold")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
