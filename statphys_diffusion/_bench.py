"""Scaffolding shared by the scripts in benchmarks/: their command line and their table output.

Private: the benchmarks compare the package's kernels with a baseline in the same run and write
ratios (docs/user_guide/conventions.rst). ``best_of`` is the one timer they share.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ._io import write_rows_csv


def parser(doc: str, default_out: Path, quick_help: str) -> argparse.ArgumentParser:
    """``--quick``, ``--repeat`` (best of, default 3) and ``--out`` (the CSV), described by the first
    paragraph of the script's docstring ``doc``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=str(default_out))
    return p


def best_of(fn, repeat: int, *, warm_up: bool = False, sync=None) -> tuple[float, object]:
    """(the shortest of ``repeat`` wall-clock times of ``fn()``, in seconds; its last return value).

    ``warm_up``: one untimed call first (compilation, allocator, caches); ``sync``: called after each
    call and inside the timing (a GPU's ``torch.cuda.synchronize``), so asynchronous work is counted.
    The minimum, not the mean: the benchmarks compare kernels on a shared machine, where other load
    only ever adds time.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    if warm_up:
        fn()
        if sync is not None:
            sync()
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        if sync is not None:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_mib(fn) -> float:
    """Peak memory (MiB) that numpy allocates while ``fn()`` runs (tracemalloc; torch's allocations are
    not traced)."""
    import tracemalloc

    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def write_table(rows: list[dict], out, *, tag: str | None = None) -> Path:
    """Write ``rows`` as CSV at ``out`` (parent folders created, atomically) and print one line per
    row, floats to 4 significant digits; ``tag``: a column printed last in brackets, not inline."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_rows_csv(out, rows)
    for r in rows:
        cells = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items() if k != tag)
        print(cells, f"[{r[tag]}]" if tag is not None else "")
    print(f"wrote {out}")
    return out
