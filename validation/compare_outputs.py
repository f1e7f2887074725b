"""Compare regenerated CSV outputs with the committed ones, number by number.

Issue 19 asks that the committed figures regenerate with the same numbers after a refactor. Rerun
a script into a scratch folder (``python validation/<script>.py --out /tmp/regen/<name>``), then

    python validation/compare_outputs.py /tmp/regen/<name> [/tmp/regen/<other> ...] [--ref figures]

For every CSV in the given folders with a namesake under ``--ref`` (a part's file
``<stem>_<part>.csv`` is held against the rows of ``<stem>.csv`` whose ``problem`` or ``part``
column equals the part), it prints the shape, whether the text columns agree, and the largest
relative difference over the numeric columns, leaving out wall-clock columns (``seconds`` and
names ending in ``_s``). NaN equals NaN. The exit status is 1 when any file differs beyond
``--rtol`` (default 1e-10: floating-point reduction order moves results by about 1e-13 here,
anything real moves them far more) or has no namesake, else 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _is_timing(col: str) -> bool:
    """Wall-clock columns: ``seconds``, ``seconds_*`` and names ending in ``_s``."""
    return col.startswith("seconds") or col.endswith("_s")


def _reference(path: Path, ref_dir: Path):
    """(reference DataFrame, its description) for a regenerated CSV, or (None, reason)."""
    import pandas as pd

    same = ref_dir / path.name
    if same.is_file():
        return pd.read_csv(same), same.name
    stem, _, part = path.stem.rpartition("_")
    whole = ref_dir / f"{stem}.csv"
    if stem and whole.is_file():
        ref = pd.read_csv(whole)
        for col in ("problem", "part"):
            if col in ref.columns:
                return ref[ref[col].astype(str) == part].reset_index(drop=True), f"{whole.name}[{col} == {part}]"
    return None, f"no {same.name} (nor a whole-run file) under {ref_dir}"


def compare(path: Path, ref_dir: Path, rtol: float) -> tuple[bool, str]:
    """(agrees, one-line report) for one regenerated CSV."""
    import pandas as pd

    new = pd.read_csv(path)
    ref, what = _reference(path, ref_dir)
    if ref is None:
        return False, f"{path}: {what}"
    if new.shape != ref.shape or list(new.columns) != list(ref.columns):
        return False, f"{path}: shape {new.shape} / columns differ from {what} {ref.shape}"
    numeric = [
        c
        for c in ref.columns
        if not _is_timing(c) and pd.api.types.is_numeric_dtype(ref[c]) and pd.api.types.is_numeric_dtype(new[c])
    ]
    text = [c for c in ref.columns if c not in numeric and not _is_timing(c)]
    # an empty cell equals an empty cell (pandas >= 3 reads it as a missing string, which never compares equal)
    text_same = all((ref[c].fillna("").astype(str) == new[c].fillna("").astype(str)).all() for c in text)
    a, b = ref[numeric].to_numpy(float), new[numeric].to_numpy(float)
    diff = np.abs(a - b)
    rel = np.where(diff == 0, 0.0, diff / np.maximum(np.abs(a), np.finfo(float).tiny))
    rel[np.isnan(a) & np.isnan(b)] = 0.0
    rel[np.isnan(a) ^ np.isnan(b)] = np.inf
    worst = float(np.max(rel)) if rel.size else 0.0
    ok = text_same and worst <= rtol
    return (
        ok,
        f"{path.name:40s} vs {what}: {ref.shape}, text {'same' if text_same else 'DIFFERS'}, max rel diff {worst:.2e}",
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--ref", type=Path, default=Path(__file__).resolve().parents[1] / "figures")
    p.add_argument("--rtol", type=float, default=1e-10)
    args = p.parse_args(argv)
    if not args.ref.is_dir():
        raise SystemExit(f"--ref {str(args.ref)!r} is not a folder")
    results = []
    for folder in args.folders:
        files = sorted(folder.glob("*.csv")) if folder.is_dir() else [folder]
        if not files:
            raise SystemExit(f"no CSV files in {str(folder)!r}")
        results += [compare(f, args.ref, args.rtol) for f in files]
    for ok, line in results:
        print(("ok   " if ok else "DIFF ") + line)
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
