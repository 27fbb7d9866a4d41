"""Math verifier recall and precision: every gold in several completion styles, plus wrong twins.

    python benchmarks/math_recall.py                      # built-in math-750 and math-500 samples
    python benchmarks/math_recall.py --math500 test.jsonl # also a full MATH-500 file (problem/solution/answer)
    python benchmarks/math_recall.py --json out.json

For every gold it builds completions in the styles a policy writes (bare value, `$…$`,
`\\boxed{}`, a box after a worked derivation full of other math, a box with currency or
units, "The final answer is …", thousands separators where the gold is >= 1000, MATH's
spaced `32,\\! 349`, one box per part of a multi-part gold, a worked solution that closes with
"Therefore, the answer is …" and no box) and their wrong twins (a perturbed value, two
different boxes, a hedge, a box that wraps a hedge, one part's box wrong, a wrong stated
answer, two different stated answers). It reports the accept rate per style for reasongym's math env and for
math-verify called the naive way on the same completion (`verify(parse(gold),
parse(completion))`). Targets: every gold style at 100% on the built-in samples
(>= 99.5% on a full MATH-500 file) and 0 wrong twins accepted.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict

from rich.console import Console
from rich.table import Table

import reasongym as rg
from envs.answers import plain_value
from envs.math.env import gold_parts
from reasongym.types import Task

GOLD_STYLES = ("bare", "dollars", "boxed", "derivation_boxed", "boxed_units", "sentence", "thousands",
               "spaced_thousands", "box_per_part", "stated")
WRONG_STYLES = ("perturbed", "two_boxes", "hedge", "boxed_hedge", "box_per_part_wrong", "stated_wrong",
                "stated_twice")
# Gold forms that MATH writes and checkers stumble on (currency, LaTeX thousands, degrees, percent,
# units, intervals, choices): written here, in MATH's own notation, so the classes are always measured.
EDGE_GOLDS = ("\\$32,\\!348", "\\$18.90", "\\$36", "14{,}916", "10,\\!000", "1,\\!000,\\!000", "90^\\circ", "25\\%",
              "12\\%", "5\\text{ inches}", "3\\text{ cm}^2", "\\frac{3}{4}", "-\\frac{1}{2}", "(-2, 2)", "[0, \\infty)",
              "\\text{(C)}", "2\\sqrt{3}", "\\pi", "x^2+7x+10", "1000", "12345", "0.5", "3, 5",
              "(2, 2), (6, 2)", "\\{1,2,3\\}", "11,\\!111,\\!111,\\!100", "x = 3, y = -1")
_BOX = re.compile(r"\\boxed\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")


def perturb(gold: str) -> str:
    """A nearby wrong value: the value's last digit moved by one (`+1` appended when it has no digit).

    Digits in a trailing unit (`3\\text{ cm}^2`) are not the value, so they are left alone."""
    marks = [at for mark in ("\\text{", "\\mbox{", "^\\circ", "^{\\circ}") if (at := gold.find(mark)) > 0]
    for i in range((min(marks) if marks else len(gold)) - 1, -1, -1):
        if gold[i].isdigit():
            return gold[:i] + str((int(gold[i]) + 1) % 10) + gold[i + 1 :]
    return gold + "+1"


def derivation(task: Task) -> str:
    """The task's worked solution with its boxes opened: math everywhere, the answer unmarked."""
    solution = str(task.metadata.get("solution") or "We simplify $x = 2 + 3$ and check $2x - 1 = 9$.")
    return _BOX.sub(lambda m: m.group(1), solution)


def completions(task: Task) -> dict[str, str]:
    """style -> answer-block text for one gold; styles that do not fit the gold are left out."""
    gold, wrong = str(task.answer), perturb(str(task.answer))
    value = plain_value(gold)
    numeric = bool(re.fullmatch(r"-?\d+(?:\.\d+)?", value))
    out = {
        "bare": gold,
        "dollars": f"${gold}$",
        "boxed": f"\\boxed{{{gold}}}",
        "derivation_boxed": f"{derivation(task)}\n\nTherefore the final answer is $\\boxed{{{gold}}}$.",
        "sentence": f"The final answer is ${gold}$",
        "perturbed": f"\\boxed{{{wrong}}}",
        "two_boxes": f"First I got $\\boxed{{{wrong}}}$, then $\\boxed{{{gold}}}$.",
        "hedge": f"${gold}$ or ${wrong}$",
        "boxed_hedge": f"\\boxed{{{wrong} \\text{{ or }} {gold}}}",
    }
    if numeric:
        out["boxed_units"] = f"\\boxed{{\\${value}}}" if "." in value else f"\\boxed{{{value}\\text{{ units}}}}"
    if numeric and "." not in value and abs(int(value)) >= 1000:
        out["thousands"] = f"\\boxed{{{int(value):,}}}".replace(",", "{,}")
        out["spaced_thousands"] = f"\\boxed{{{int(value):,}}}".replace(",", ",\\! ")  # MATH's own `32,\\! 349`
    parts = gold_parts(gold)
    if len(parts) > 1:  # one box per part, as models write multi-part answers
        out["box_per_part"] = " \\quad \\text{and} \\quad ".join(f"\\boxed{{{part}}}" for part in parts)
        out["box_per_part_wrong"] = " and ".join(f"\\boxed{{{part}}}" for part in [*parts[:-1], perturb(parts[-1])])
    shown = value if numeric else f"${gold}$"
    out["stated"] = f"{derivation(task)}\n\nTherefore, the answer is {shown}."
    out["stated_wrong"] = f"{derivation(task)}\n\nTherefore, the answer is {plain_value(wrong) if numeric else f'${wrong}$'}."
    out["stated_twice"] = f"The answer is {plain_value(wrong) if numeric else f'${wrong}$'}. Wait, the answer is {shown}."
    return out


def naive_math_verify(gold: str, completion: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$"), parse(completion)))
    except Exception:  # noqa: BLE001 - the naive call may raise; that is a rejection
        return False


def load_tasks(math500_file: str | None) -> dict[str, list[Task]]:
    sets = {"math-750 sample": rg.make("math-750", source="sample").tasks("train", n=None, seed=None)
            + rg.make("math-750", source="sample").tasks("test", n=None, seed=None),
            "math-500 sample": rg.make("math-500", source="sample").tasks("test", n=None, seed=None),
            "edge golds": [Task(id=f"edge:{i}", question={"problem": "Compute it."}, answer=gold)
                           for i, gold in enumerate(EDGE_GOLDS)]}
    if math500_file:
        sets["math-500 file"] = rg.make("math-500", data_files=math500_file).tasks("test", n=None, seed=None)
    return sets


def measure(env: rg.Env, tasks: list[Task]) -> dict[str, dict[str, list[int]]]:
    """style -> {"reasongym": [accepted, total], "math-verify": [...]}."""
    rows: list[tuple[str, Task, str]] = []
    for task in tasks:
        for style, block in completions(task).items():
            rows.append((style, task, f"<think>\nworking\n</think>\n<answer>{block}</answer>"))
    scores = env.score_batch([text for _, _, text in rows], [task for _, task, _ in rows])
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"reasongym": [0, 0], "math-verify": [0, 0]})
    for (style, task, text), score in zip(rows, scores):
        counts[style]["reasongym"][0] += score.components.get("correct", 0.0) == 1.0
        counts[style]["reasongym"][1] += 1
        counts[style]["math-verify"][0] += naive_math_verify(str(task.answer), text)
        counts[style]["math-verify"][1] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--math500", help="a MATH-500 jsonl/parquet file with problem, solution and answer columns")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    console = Console()
    env = rg.make("math-500", source="sample")  # the verifier; tasks carry their own gold
    report: dict[str, dict] = {}
    failed = False
    for name, tasks in load_tasks(args.math500).items():
        counts = measure(env, tasks)
        table = Table(title=f"{name}: {len(tasks)} golds (accepted / built)")
        for column in ("style", "kind", "reasongym", "math-verify (naive)"):
            table.add_column(column, justify="left" if column in ("style", "kind") else "right")
        for style in (*GOLD_STYLES, *WRONG_STYLES):
            if style not in counts:
                continue
            ours, naive = counts[style]["reasongym"], counts[style]["math-verify"]
            kind = "gold" if style in GOLD_STYLES else "wrong twin"
            table.add_row(style, kind, f"{ours[0]}/{ours[1]} ({ours[0] / ours[1]:.1%})",
                          f"{naive[0]}/{naive[1]} ({naive[0] / naive[1]:.1%})")
            target = 0.995 if name == "math-500 file" else 1.0
            if kind == "gold" and ours[0] / ours[1] < target or kind == "wrong twin" and ours[0]:
                failed = True
        console.print(table)
        report[name] = {style: dict(c) for style, c in counts.items()}
    console.print("[green]targets met[/]" if not failed else "[red]targets missed[/] (gold styles < target or a wrong twin accepted)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
