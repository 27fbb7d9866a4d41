"""Can training teach a policy to use multi-turn feedback? A control env where only feedback helps.

    python benchmarks/multi_turn_feedback_cpu.py [--seed 0] [--rounds 6] [--high 8] [--out DIR] [RS flags]

On 2-turn countdown the embedded policy's second try fixes 2-3% of its failures before and after
rejection sampling (docs/multi-turn.md), so that env cannot tell "the loop teaches feedback use"
from "the tiny policy cannot read countdown feedback". This benchmark isolates the loop:

- `higher-lower`: a secret whole number in 1..HIGH (a hash of the game, so not guessable from the
  prompt); after a wrong guess the env says "Higher." or "Lower.", up to 3 turns.
- Success on turn 1 is luck for every policy (1/HIGH in expectation); success by turn 2 and 3 can
  only rise above a memoryless guesser's (1 - (1 - 1/HIGH)^k) by reading the feedback.
- The policy is the embedded default policy warm-started on single-turn rows only (the answer,
  never a feedback turn), then `trainers.rejection_sampling` on 3-turn episodes, which keeps whole
  solved conversations. `trainers.evaluate` reports pass@turn-k before and after on 200 test games
  x 4 episodes at T=1.

Everything runs in this process (the env is registered here, so the trainers' `main` finds it by id).
Prints a table and writes `report.json` under --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import reasongym as rg  # noqa: E402
from reasongym.parsing import read_layout  # noqa: E402

ENV_ID = "higher-lower"
TURNS = 3


class HigherLower(rg.Env):
    """Guess a hidden number in 1..high; after a miss the env says which way to go."""

    templates = {"chat": rg.PromptTemplate(
        "chat", "chat", user="Game {game}. I picked a whole number from 1 to {high}. Guess it: answer inside "
        "<answer></answer>. After a wrong guess I say Higher or Lower.")}
    default_template = "chat"

    def __init__(self, high: int = 8, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(high, int) or not 2 <= high <= 1000:
            raise ValueError(f"high must be an int in 2..1000, got {high!r}")
        self.high = high

    def _task_at(self, split: str, index: int, seed: int) -> rg.Task:
        game = index + (1_000_000 if split == "test" else 0)  # disjoint splits: test games are numbered apart
        digest = hashlib.blake2b(f"higher-lower|{seed}|{game}".encode(), digest_size=8).digest()
        secret = 1 + int.from_bytes(digest, "big") % self.high
        return rg.Task(id=f"{ENV_ID}:{split}:{index}", question={"game": game, "high": self.high}, answer=secret)

    def verify(self, text: str, task: rg.Task) -> rg.Score:
        answer = (read_layout(text).answer() or "").strip()
        if not answer.isdigit() or len(answer) > 6:
            return self.make_score({}, rg.Outcome.UNPARSEABLE)
        ok = int(answer) == task.answer
        return self.make_score({"correct": float(ok)}, rg.Outcome.CORRECT if ok else rg.Outcome.WRONG, int(answer))

    def feedback(self, score: rg.Score, task: rg.Task) -> str:  # the direction, never the number
        if score.parsed is None:
            return "Answer with a whole number inside <answer></answer>."
        return "Higher." if score.parsed < task.answer else "Lower."

    def reference_completion(self, task: rg.Task) -> str:
        return f"<answer>{task.answer}</answer>"


def memoryless(high: int, turns: int) -> list[float]:
    """pass@turn-k of a guesser that ignores feedback and draws uniformly each turn."""
    return [1 - (1 - 1 / high) ** k for k in range(1, turns + 1)]


def episode_stats(samples_path: str) -> dict:
    """Per-task counts of episodes solved by turn 1 and by the last turn, and how often a retry follows the
    feedback (after "Lower." a smaller guess, after "Higher." a larger one; see `follow_by_chance`)."""
    by_first, by_last, followed, retries = {}, {}, 0, 0
    with open(samples_path) as f:
        for row in map(json.loads, f):
            turn = row["success_turn"]
            by_first[row["task_id"]] = by_first.get(row["task_id"], 0) + (turn == 1)
            by_last[row["task_id"]] = by_last.get(row["task_id"], 0) + (turn is not None)
            for previous, current in zip(row["turns"], row["turns"][1:]):
                if previous["parsed"] is None or current["parsed"] is None:
                    continue
                retries += 1
                lower = previous["feedback"] == "Lower."
                followed += current["parsed"] < previous["parsed"] if lower else current["parsed"] > previous["parsed"]
    ids = sorted(by_first)
    return {"first": [by_first[i] for i in ids], "last": [by_last[i] for i in ids],
            "follows_feedback": followed / max(1, retries)}


def follow_by_chance(high: int) -> float:
    """How often a uniform, memoryless guesser's retry happens to follow the feedback (0.625 for 1..8)."""
    return sum((x - 1) ** 2 + (high - x) ** 2 for x in range(1, high + 1)) / (high * high * (high - 1))


def evaluate(policy: str, env_kwargs: dict, out: str, tasks: int, samples: int) -> list[float]:
    from trainers.evaluate import main as evaluate_main

    code = evaluate_main(["--env", ENV_ID, "--env-kwargs", json.dumps(env_kwargs), "--model", policy,
                          "--n", str(tasks), "--samples", str(samples), "--k", "1", "--temperature", "1.0",
                          "--max_new_tokens", "16", "--batch_size", "128", "--output_dir", out])
    if code:
        raise SystemExit(f"evaluation of {policy} failed ({code})")
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    by_turn = report["success_by_turn"]
    return [float(by_turn[f"pass@turn-{k}"]) for k in range(1, TURNS + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--high", type=int, default=8)
    parser.add_argument("--k", type=int, default=8, help="episodes per prompt in each round")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--epochs", type=float, default=3.0, help="SFT epochs over each round's accepted rows")
    parser.add_argument("--eval-tasks", type=int, default=200)
    parser.add_argument("--out", default="outputs/multi-turn-feedback")
    args, rs_extra = parser.parse_known_args()  # anything else goes to trainers.rejection_sampling (SFT fields too)

    from dataclasses import replace

    from trainers.policies.default_policy import PRESETS, default_policy
    from trainers.rejection_sampling import main as rs_main
    from trainers.common.stats import sign_test

    rg.register(ENV_ID, HigherLower, description="hidden number, Higher/Lower feedback (benchmark env)")
    base = {"high": args.high}
    episodes = {**base, "max_turns": TURNS}
    out = os.path.join(args.out, f"seed{args.seed}")
    start = time.time()
    # single-turn warm start: the policy learns the answer format and guesses; it never sees a feedback turn
    policy = default_policy(ENV_ID, base, replace(PRESETS["cpu"], sft_steps=100))
    before = evaluate(policy, episodes, os.path.join(out, "eval-warm-start"), args.eval_tasks, 4)
    code = rs_main(["--env", ENV_ID, "--env-kwargs", json.dumps(episodes), "--model", policy,
                    "--rounds", str(args.rounds), "--k", str(args.k), "--prompts", str(args.prompts),
                    "--max_new_tokens", "16", "--eval_size", "64", "--learning_rate", str(args.learning_rate),
                    "--num_train_epochs", str(args.epochs),
                    "--per_device_train_batch_size", "16", "--seed", str(args.seed), "--use_cpu", "true",
                    "--output_dir", os.path.join(out, "rs"), *rs_extra])
    if code:
        raise SystemExit(f"rejection sampling failed ({code})")
    after = evaluate(os.path.join(out, "rs", f"round-{args.rounds}"), episodes, os.path.join(out, "eval-after"),
                     args.eval_tasks, 4)
    chance, chance_follow = memoryless(args.high, TURNS), follow_by_chance(args.high)

    start_stats = episode_stats(os.path.join(out, "eval-warm-start", "samples.jsonl"))
    end_stats = episode_stats(os.path.join(out, "eval-after", "samples.jsonl"))
    turn_1 = sign_test(start_stats["first"], end_stats["first"])
    by_last = sign_test(start_stats["last"], end_stats["last"])
    report = {"seed": args.seed, "high": args.high, "turns": TURNS, "rounds": args.rounds, "rs_flags": rs_extra,
              "memoryless_guesser": chance, "warm_start": before, "after_rs": after,
              "follows_feedback": {"memoryless_guesser": chance_follow, "warm_start": start_stats["follows_feedback"],
                                   "after_rs": end_stats["follows_feedback"]},
              "sign_test_turn_1": {"improved": turn_1.improved, "worsened": turn_1.worsened, "p_value": turn_1.p_value},
              f"sign_test_by_turn_{TURNS}": {"improved": by_last.improved, "worsened": by_last.worsened,
                                             "p_value": by_last.p_value},
              "wall_s": round(time.time() - start, 1)}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nhigher-lower 1..{args.high}, {TURNS} turns, seed {args.seed}, "
          f"{args.eval_tasks} test games x 4 episodes at T=1 ({report['wall_s']:.0f} s)")
    print(f"{'':28}" + "".join(f"{'pass@turn-' + str(k):>14}" for k in range(1, TURNS + 1)))
    for name, row in (("memoryless guesser", chance), ("warm start", before), (f"after {args.rounds} RS rounds", after)):
        print(f"{name:28}" + "".join(f"{x:14.3f}" for x in row))
    print(f"retries that follow the feedback: {start_stats['follows_feedback']:.3f} -> {end_stats['follows_feedback']:.3f} "
          f"(a memoryless guesser: {chance_follow:.3f})")
    print(f"solved on turn 1: {turn_1.describe()}")
    print(f"solved by turn {TURNS}: {by_last.describe()}")


if __name__ == "__main__":
    main()
