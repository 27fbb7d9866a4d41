"""Dataset-backed task sources: the hub id or local files, through `datasets`.

Both paths run the real `datasets.load_dataset`; tests write small JSONL/parquet
files in the official formats. Without hub access the error names the option
that points at local files instead of surfacing a network stack trace.
"""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
from typing import Any, Iterable, Sequence

from reasongym.errors import DatasetUnavailable

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _builder_for(paths: Iterable[str]) -> str:
    """The `datasets` builder for local files; gzip/bz2/xz-compressed files are read by their inner extension."""
    def extension(path: str) -> str:
        stem, ext = os.path.splitext(path.lower())
        return os.path.splitext(stem)[1] if ext in (".gz", ".bz2", ".xz") else ext

    kinds = {_BUILDERS.get(extension(p)) for p in paths}
    if len(kinds) != 1 or None in kinds:
        raise DatasetUnavailable(f"data_files must all be one of {sorted(_BUILDERS)}, got {sorted(paths)}")
    return kinds.pop()


DataFiles = str | Sequence[str] | dict[str, str | Sequence[str]]
_SPLIT_IN_NAME = re.compile(r"(?:^|[^a-z])(train|test|validation|valid|dev)(?:[^a-z]|$)")


def split_files(data_files: DataFiles, splits: Sequence[str]) -> dict[str, list[str]]:
    """`data_files` as {split: [paths]}, for an env whose splits are `splits`.

    A dict names its splits. A single path or a list: for a one-split env every file is that
    split; otherwise each file goes to the split its name carries, as `datasets` names hub
    files (`test.jsonl`, `test-00000-of-00001.parquet`, `gsm8k_train.jsonl`), and a file whose
    name carries none is the train split (datasets' own rule for a bare path).
    """
    if isinstance(data_files, dict):
        grouped = {str(k): [v] if isinstance(v, str) else list(v) for k, v in data_files.items()}
    else:
        if isinstance(data_files, (str, os.PathLike)):
            files = [os.fspath(data_files)]
        elif isinstance(data_files, (list, tuple)) and all(isinstance(f, (str, os.PathLike)) for f in data_files):
            files = [os.fspath(f) for f in data_files]
        else:
            raise DatasetUnavailable(
                f"data_files must be a path, a list of paths or a dict of split -> path(s), got {data_files!r}")
        if not files:
            raise DatasetUnavailable("data_files is empty: pass at least one file")
        grouped = {}
        for path in files:
            named = _SPLIT_IN_NAME.search(os.path.basename(path).lower())
            split = splits[0] if len(splits) == 1 else (named.group(1) if named and named.group(1) in splits else "train")
            grouped.setdefault(split, []).append(path)
    unknown = sorted(set(grouped) - set(splits))
    if unknown:
        raise DatasetUnavailable(f"data_files names split(s) {unknown}; this env's splits are {list(splits)}")
    return grouped


def files_for_source(source: str, data_files: "DataFiles | None", sample: "DataFiles") -> "DataFiles | None":
    """The data files a dataset env loads: `sample` for source="sample", the user's `data_files` (None: the hub)
    for source="hub". Both a source and files, or another source, is an error that says what to pass."""
    if source == "sample":
        if data_files is not None:
            raise ValueError("pass data_files or source='sample', not both")
        return sample
    if source != "hub":
        raise ValueError(f"source must be 'hub' or 'sample', got {source!r}")
    return data_files


def alternate_split(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One file as two disjoint splits: even rows train, odd rows test (the built-in samples)."""
    return {"train": rows[0::2], "test": rows[1::2]}


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the hub endpoint: `datasets` would otherwise retry for ~25 s before failing."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return True  # offline mode: `datasets` reads its local cache and fails fast by itself
    endpoint = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_splits(
    hub_id: str,
    data_files: DataFiles | None = None,
    config: str | None = None,
    columns: tuple[str, ...] = (),
    splits: Sequence[str] = ("train", "test"),
) -> dict[str, list[dict[str, Any]]]:
    """Rows per split as plain dicts (only the splits the files give); checks the columns the env needs."""
    import datasets

    try:
        if data_files is not None:
            files = split_files(data_files, splits)
            paths = [path for group in files.values() for path in group]
            for path in paths:
                if not os.path.exists(path):
                    raise DatasetUnavailable(f"data file {path!r} does not exist: fix the path given in data_files=")
            loaded = datasets.load_dataset(_builder_for(paths), data_files=files)
        else:
            if not hub_reachable():
                raise ConnectionError("the Hugging Face Hub is unreachable from this machine")
            loaded = datasets.load_dataset(hub_id, config) if config else datasets.load_dataset(hub_id)
    except DatasetUnavailable:
        raise
    except Exception as exc:
        where = f"files {data_files}" if data_files is not None else f"{hub_id!r} from the Hugging Face Hub"
        raise DatasetUnavailable(
            f"could not load {where} ({type(exc).__name__}: {str(exc)[:200]}). Without hub access, pass "
            f"data_files='path/to/test.jsonl' (a file named after its split, a list of such files, or a dict of "
            f"split -> path; JSONL or parquet in the official format), e.g. --env-kwargs '{{\"data_files\": {{\"train\": \"train.jsonl\", \"test\": \"test.jsonl\"}}}}', "
            f"or source='sample' for the small built-in sample."
        ) from exc
    out: dict[str, list[dict[str, Any]]] = {}
    for split, table in loaded.items():
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DatasetUnavailable(f"split {split!r} lacks column(s) {missing}; it has {table.column_names}")
        out[split] = table.to_list()
    return out
