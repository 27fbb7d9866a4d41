"""Progress for long trainer work (warm starts, evaluation, training steps), on a terminal or in a log file.

On a terminal: a rich bar. Without one (`python -m trainers.grpo ... > run.log 2>&1`, the way the
reference recipes log), rich draws nothing until the work ends, so `make_progress` returns a
`PlainProgress` that prints one line every few percent with the rate and the time left:

    warm start: SFT on solver completions  120/400 (30%)  1.21 it/s  elapsed 1:39  ETA 3:51  loss 0.412
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback

PLAIN_EVERY_PERCENT = 5


def make_progress(console: Console | None = None, every_percent: int = PLAIN_EVERY_PERCENT) -> "Progress | PlainProgress":
    console = console or Console()
    if not console.is_terminal:
        return PlainProgress(console, every_percent)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


@dataclass
class _Line:
    description: str
    total: float
    completed: float = 0.0
    info: str = ""
    started: float = field(default_factory=time.monotonic)
    printed_step: int = -1


class PlainProgress:
    """The part of rich's `Progress` API the trainers use, printing plain lines for log files."""

    def __init__(self, console: Console, every_percent: int = PLAIN_EVERY_PERCENT) -> None:
        self.console = console
        self.every = max(1, every_percent)
        self._tasks: list[_Line] = []

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for task_id, line in enumerate(self._tasks):
            if line.completed < line.total and line.printed_step >= 0:
                self._print(task_id, final=True)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        self._tasks.append(_Line(description, float(total or 0), float(completed), str(fields.get("info", ""))))
        self._maybe_print(len(self._tasks) - 1)
        return len(self._tasks) - 1

    def update(self, task_id: int, completed: float | None = None, advance: float | None = None,
               info: str | None = None, **_: Any) -> None:
        line = self._tasks[task_id]
        if completed is not None:
            line.completed = float(completed)
        if advance is not None:
            line.completed += advance
        if info is not None:
            line.info = info
        self._maybe_print(task_id)

    def _maybe_print(self, task_id: int) -> None:
        line = self._tasks[task_id]
        if line.total <= 0:
            return
        step = int(100 * line.completed / line.total) // self.every
        if step > line.printed_step:
            line.printed_step = step
            self._print(task_id)

    def _print(self, task_id: int, final: bool = False) -> None:
        line = self._tasks[task_id]
        elapsed = time.monotonic() - line.started
        rate = line.completed / elapsed if elapsed > 0 and line.completed else 0.0
        left = (line.total - line.completed) / rate if rate else None
        parts = [line.description, f"{line.completed:g}/{line.total:g} ({100 * line.completed / line.total:.0f}%)",
                 f"{rate:.2f} it/s" if rate else "", f"elapsed {_clock(elapsed)}",
                 "" if final or left is None else f"ETA {_clock(left)}", line.info, "(stopped)" if final else ""]
        self.console.print("  ".join(p for p in parts if p), markup=False, highlight=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class StepProgressCallback(TrainerCallback):
    """Steps of a transformers/TRL Trainer (SFT warm start, GRPO) as a bar or plain lines, with the last
    loss or reward; main process only."""

    def __init__(self, description: str, console: Any = None):
        self.description = description
        self.console = console
        self.progress: Any = None
        self.task_id: Any = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.progress = make_progress(self.console)
            self.progress.start()
            self.task_id = self.progress.add_task(self.description, total=state.max_steps,
                                                  completed=state.global_step, info="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task_id, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        shown = [f"{key} {float(logs[key]):.3f}" for key in ("loss", "reward") if key in logs]
        if shown:
            self.progress.update(self.task_id, info="  ".join(shown))

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def quiet_libraries() -> None:
    """Silence the per-map / per-load progress bars of datasets and transformers: our own bars
    say what is happening, and the library bars flood non-interactive logs."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
