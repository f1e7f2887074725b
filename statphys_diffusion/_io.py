"""Atomic file output for reports, benchmarks and validation scripts (write to a temporary file, then rename)."""

from __future__ import annotations

import csv
import os
from pathlib import Path


def temporary_name(path) -> Path:
    """A per-process temporary file beside ``path`` (two writers never share one)."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class DirectoryLock:
    """An exclusive lock on a directory: ``<dir>/<name>`` holds the owner's pid.

    Entering raises ValueError if another live process holds the lock; a lock left by a process
    that no longer exists (killed) is stale and taken over. Re-entrant within one process.
    """

    def __init__(self, directory, name: str = ".lock"):
        self.path = Path(directory) / name
        self._owner = False

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or "0")
                except (OSError, ValueError):
                    pid = 0
                if pid == os.getpid():
                    return self  # nested use in the same process
                if pid and _alive(pid):
                    raise ValueError(
                        f"{str(self.path.parent)!r} is locked by process {pid} (another run is writing there); "
                        "wait for it or use another directory"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            self._owner = True
            return self
        raise ValueError(f"could not take the lock {str(self.path)!r}")

    def __exit__(self, *exc):
        if self._owner:
            self.path.unlink(missing_ok=True)
            self._owner = False
        return False


def atomic_write_text(path, text: str) -> None:
    path = Path(path)
    tmp = temporary_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_rows_csv(path, rows: list[dict]) -> None:
    """Tidy rows (one dict per row; the header is the union of keys in first-seen order), written atomically."""
    path = Path(path)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = temporary_name(path)
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
