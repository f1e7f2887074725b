"""The experiment shape of validation/ (validation/preregistrations/ and this module): a pre-registration, a verdict
vocabulary with bootstrap stability, and provenance in every output.

- A **pre-registration** is ``validation/preregistrations/<name>.md``: claims, gates, power rule and
  decision rule, committed before any training or measurement. :func:`preregistration` returns its
  path and SHA-256; a full run refuses to start while the file is missing or differs from what git
  has committed (so every output's hash names a committed text). Quick runs only record the hash.
- A **verdict** is one of :data:`VERDICTS` with its reason and its stability: the share of
  bootstrap resamples of the measurement for which the decision rule gives the same outcome. Below
  :data:`STABILITY_FLOOR` the verdict is ``inconclusive`` whatever the point estimate said.
- **Provenance** (:func:`provenance`): git commit (and whether the tree was clean, outputs and job
  caches aside), command line, package version, the resolved configuration, seconds, and the
  pre-registration's hash.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PREREGISTRATIONS = Path(__file__).resolve().parent / "preregistrations"
VERDICTS = ("confirmed", "refuted", "partly", "inconclusive", "not testable")
STABILITY_FLOOR = 0.8


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def preregistration(name: str, *, require_committed: bool) -> tuple[Path, str]:
    """(path, SHA-256 of its bytes) of ``preregistrations/<name>.md``.

    ``require_committed``: refuse (SystemExit with the reason) when the file is missing, untracked or
    differs from its committed version; full runs pass True.
    """
    path = PREREGISTRATIONS / f"{name}.md"
    if not path.is_file():
        if require_committed:
            raise SystemExit(f"no pre-registration at {path}: write and commit it before a full run")
        return path, ""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if require_committed:
        rel = path.relative_to(ROOT).as_posix()
        if not _git("ls-files", "--", rel) or _git("status", "--porcelain", "--", rel):
            raise SystemExit(f"{rel} is not committed as it is: commit the pre-registration before a full run")
    return path, digest


def _plain(obj):
    """``obj`` with dataclass instances as dicts, tuples as lists and paths as strings, at any depth (JSON-ready)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def provenance(config, prereg_hash: str | None, seconds: float) -> dict:
    """The provenance block every output carries (module docstring).

    ``prereg_hash``: the pre-registration's SHA-256 (:func:`preregistration`), or None for a script written
    before issue 34, whose criteria are stated in its docstring and the validation page (committed before
    the run they judge: the git history shows the order); the block then says so.
    """
    import statphys_diffusion as sd

    cfg = _plain(config)
    criteria = "preregistration" if prereg_hash is not None else "the script's docstring (pre-issue-34 script)"
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        # clean: nothing uncommitted but the outputs themselves (figures/) and the job caches, which a run
        # writes before this block is made
        "git_clean": _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!figures", ":!validation/jobs")
        == "",
        "argv": sys.argv,
        "version": sd.__version__,
        "config": cfg,
        "seconds": round(float(seconds), 1),
        "preregistration_sha256": prereg_hash,
        "criteria_stated_in": criteria,
    }


@dataclass(frozen=True)
class Verdict:
    """An outcome of :data:`VERDICTS`, why, and the share of bootstrap resamples that agree."""

    outcome: str
    reason: str
    stability: float
    n_resamples: int

    def __post_init__(self):
        if self.outcome not in VERDICTS:
            raise ValueError(f"outcome must be one of {VERDICTS}, got {self.outcome!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def decide(
    rule: Callable[[object], tuple[str, str]],
    data,
    resample: Callable[[object, np.random.Generator], object],
    *,
    n_resamples: int = 200,
    rng=None,
) -> Verdict:
    """Apply the decision ``rule`` (data -> (outcome, reason)) to the data and to ``n_resamples`` bootstrap
    resamples of it; the verdict is the rule's outcome on the data, its stability the share of resamples
    giving that outcome, and ``inconclusive`` when the share is below :data:`STABILITY_FLOOR`."""
    rng = np.random.default_rng(rng)
    outcome, reason = rule(data)
    if outcome == "not testable":  # a failed gate: no resampling changes that
        return Verdict(outcome, reason, 1.0, 0)
    same = sum(rule(resample(data, rng))[0] == outcome for _ in range(n_resamples))
    stability = same / n_resamples
    if stability < STABILITY_FLOOR:
        return Verdict(
            "inconclusive",
            f"{reason}; but only {stability:.0%} of {n_resamples} bootstrap resamples give {outcome!r} "
            f"(floor {STABILITY_FLOOR:.0%})",
            stability,
            n_resamples,
        )
    return Verdict(outcome, reason, stability, n_resamples)


class Timer:
    """Seconds since construction."""

    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def write_json(path: Path, payload: dict) -> None:
    """Indented JSON (numpy scalars and arrays as plain numbers and lists), written atomically."""

    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"not JSON-serialisable: {type(o).__name__}")

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=default))
    tmp.replace(path)


def parser(doc: str, quick_help: str, *, runs: bool = True, data: bool = True) -> argparse.ArgumentParser:
    """The options every pre-registered experiment takes: ``--quick``, ``--reference-check``, ``--runs``
    (training runs, relative to the repository root; ``runs``), ``--data`` (``data``), ``--out``, ``--cache``
    and ``--progress``; a script adds its own after."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--reference-check", action="store_true", help="the exact reference through the same reading")
    if runs:
        p.add_argument("--runs", default="runs", help="training runs (relative to the repository root)")
    if data:
        p.add_argument("--data", default=None, help="CIFAR-10 zip (default: ../shared/data)")
    p.add_argument("--out", default=None, help="output folder (default: figures/)")
    p.add_argument("--cache", default=None, help="job cache (default: validation/jobs/<name>; none in --quick)")
    p.add_argument("--progress", action="store_true")
    return p


def destinations(args, jobs: Path) -> tuple[Path | None, Path]:
    """(job cache, output folder) of :func:`parser`'s options: ``--cache`` or ``jobs`` (none in ``--quick``
    unless named), ``--out`` or figures/."""
    cache = Path(args.cache) if args.cache else (None if args.quick else jobs)
    return cache, Path(args.out) if args.out else ROOT / "figures"
