"""Dataset-backed task sources: the hub id or local files, through `datasets`.

Both paths run the real `datasets.load_dataset`; tests write small JSONL/parquet
files in the official formats. Without hub access the error names the option
that points at local files instead of surfacing a network stack trace.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from typing import Any, Iterable

from reasongym.errors import DatasetUnavailable

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _builder_for(paths: Iterable[str]) -> str:
    kinds = {_BUILDERS.get(os.path.splitext(p)[1].lower()) for p in paths}
    if len(kinds) != 1 or None in kinds:
        raise DatasetUnavailable(f"data_files must all be one of {sorted(_BUILDERS)}, got {sorted(paths)}")
    return kinds.pop()


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
    data_files: str | dict[str, str] | None = None,
    config: str | None = None,
    columns: tuple[str, ...] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Rows per split as plain dicts; checks the columns the env needs."""
    import datasets

    try:
        if data_files is not None:
            files = {"train": data_files} if isinstance(data_files, str) else dict(data_files)
            for path in files.values():
                if not os.path.exists(path):
                    raise DatasetUnavailable(f"data file {path!r} does not exist: fix the path given in data_files=")
            loaded = datasets.load_dataset(_builder_for(files.values()), data_files=files)
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
            f"data_files='path/to/train.jsonl' (or a dict of split -> path, JSONL or parquet in the official "
            f"format), e.g. --env-kwargs '{{\"data_files\": {{\"train\": \"train.jsonl\", \"test\": \"test.jsonl\"}}}}', "
            f"or source='sample' for the small built-in sample."
        ) from exc
    out: dict[str, list[dict[str, Any]]] = {}
    for split, table in loaded.items():
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DatasetUnavailable(f"split {split!r} lacks column(s) {missing}; it has {table.column_names}")
        out[split] = table.to_list()
    return out
