"""Atomic file output for reports, benchmarks and validation scripts (write to a temporary file, then rename)."""

from __future__ import annotations

import csv
import os
from pathlib import Path


def atomic_write_text(path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_rows_csv(path, rows: list[dict]) -> None:
    """Tidy rows (one dict per row; the header is the union of keys in first-seen order), written atomically."""
    path = Path(path)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
