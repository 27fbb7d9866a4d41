"""Load Jiayi-Pan/Countdown-Tasks-3to4 (columns `target`, `nums`) through `datasets`."""

from __future__ import annotations

from typing import Any, Callable

from envs.datasets_io import DataFiles, load_splits

HUB_ID = "Jiayi-Pan/Countdown-Tasks-3to4"
TINYZERO_TRAIN_ROWS = 327_680  # TinyZero: train = rows [0, 327680), test = the next 1024


def load_rows(data_files: "DataFiles | None", test_size: int,
              keep: Callable[[dict[str, Any]], bool] = lambda row: True) -> dict[str, list[dict[str, Any]]]:
    """Rows per split that `keep` accepts. A single split is cut the way TinyZero cut it when it
    is big enough, else its last `test_size` rows (at most a tenth) become the test split."""
    splits = {name: [r for r in rows if keep(r)]
              for name, rows in load_splits(HUB_ID, data_files=data_files, columns=("target", "nums")).items()}
    if "test" in splits:
        return {"train": splits.get("train", []), "test": splits["test"]}
    rows = splits["train"]
    if len(rows) >= TINYZERO_TRAIN_ROWS + test_size:
        return {"train": rows[:TINYZERO_TRAIN_ROWS], "test": rows[TINYZERO_TRAIN_ROWS : TINYZERO_TRAIN_ROWS + test_size]}
    cut = len(rows) - max(1, min(test_size, len(rows) // 10))
    return {"train": rows[:cut], "test": rows[cut:]}
