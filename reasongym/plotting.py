"""Reward/accuracy curves from a run's `metrics.jsonl` (matplotlib, imported lazily)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from reasongym import telemetry as t

CURVE_KEYS = (t.REWARD, t.component_mean("correct"), t.component_mean("format"), t.component_mean("correct", eval_=True),
              t.AHA_RATE)


def read_metrics(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(records: list[dict[str, Any]], out_path: str, title: str = "training curves",
                keys: tuple[str, ...] = CURVE_KEYS,
                points: list[tuple[list[float], list[float], str]] | None = None) -> str | None:
    """One line per metric present in `records` (x = step), plus optional labelled, annotated
    point series (e.g. held-out accuracy before and after); returns the PNG path, or None if
    nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    for key in keys:
        line = [(r["step"], r[key]) for r in records
                if isinstance(r.get(key), (int, float)) and not math.isnan(r[key]) and "step" in r]
        if line:
            series[key] = line
    if not series and not points:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, line in series.items():
        xs, ys = zip(*line)
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=key)
    for xs, ys, label in points or []:
        ax.scatter(xs, ys, color="black", zorder=3, label=label)
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(4, 6))
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
