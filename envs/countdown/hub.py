"""Load Jiayi-Pan/Countdown-Tasks-3to4 (columns `target`, `nums`) through `datasets`."""

from __future__ import annotations

from typing import Any

from envs.datasets_io import load_splits

HUB_ID = "Jiayi-Pan/Countdown-Tasks-3to4"
TINYZERO_TRAIN_ROWS = 327_680  # TinyZero: train = rows [0, 327680), test = the next 1024


def load_rows(data_files: str | dict[str, str] | None, test_size: int) -> dict[str, list[dict[str, Any]]]:
    """Rows per split. A single split is cut the way TinyZero cut it when it is big
    enough, else its last `test_size` rows (at most a tenth) become the test split."""
    splits = load_splits(HUB_ID, data_files=data_files, columns=("target", "nums"))
    if "test" in splits:
        return {"train": splits["train"], "test": splits["test"]}
    rows = splits["train"]
    if len(rows) >= TINYZERO_TRAIN_ROWS + test_size:
        return {"train": rows[:TINYZERO_TRAIN_ROWS], "test": rows[TINYZERO_TRAIN_ROWS : TINYZERO_TRAIN_ROWS + test_size]}
    cut = len(rows) - max(1, min(test_size, len(rows) // 10))
    return {"train": rows[:cut], "test": rows[cut:]}
