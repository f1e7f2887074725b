"""The skeleton the validation scripts share: a command line of parts, and the writing of outputs.

A script made of parts (``memorization.py``, ``symmetry_breaking.py``, ...) calls
:func:`run_parts` with its parts in order; each part is ``fn(out, quick) -> dict`` and its
summary lands under its name in ``<name>_<part>.json``. Every figure ends with
:func:`save_figure`; :func:`style` finishes a panel.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import _experiment as ex

FIGURES = Path(__file__).resolve().parents[1] / "figures"
QUICK_HELP = "small sizes: checks the pipeline, not the science"


def parts_parser(doc: str, parts, *, extra_parts=(), quick_help: str = QUICK_HELP) -> argparse.ArgumentParser:
    """``--quick``, ``--part {all, <parts>, <extra_parts>}`` and ``--out`` (default figures/)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--part", default="all", choices=["all", *parts, *extra_parts])
    p.add_argument("--out", default=str(FIGURES))
    return p


def run_parts(name: str, parts: dict[str, Callable], args, *, full=None, quick=None) -> dict:
    """Run the parts ``args.part`` selects (all of them for "all") and write ``<name>_<part>.json``.

    With ``full`` and ``quick`` (the script's two frozen config dataclasses, issue 34's experiment shape)
    each part is called ``fn(out, cfg)`` with the one ``--quick`` selects, and the config goes into the
    JSON; without them ``fn(out, quick: bool)`` (scripts not yet moved to the shape)."""
    timer = ex.Timer()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"quick": args.quick}
    mode = args.quick
    if full is not None:
        mode = quick if args.quick else full
    for part, fn in parts.items():
        if args.part in ("all", part):
            summary[part] = fn(out, mode)
    config = dataclasses.asdict(mode) if full is not None else {"quick": args.quick}
    summary["provenance"] = ex.provenance(dict(config, part=args.part), None, timer.seconds)
    dump_json(out / f"{name}_{args.part}.json", summary, echo=True)
    return summary


def dump_json(path: Path, summary: dict, *, echo: bool = False, skip=()) -> None:
    """Write ``summary`` as indented JSON (numpy scalars as floats); ``echo`` prints it less ``skip`` keys."""
    Path(path).write_text(json.dumps(summary, indent=2, default=float))
    if echo:
        print(json.dumps({k: v for k, v in summary.items() if k not in skip}, indent=2, default=float))


def save_figure(fig, path: Path, title: str | None = None, *, dpi: int = 120, fontsize: int = 10) -> None:
    """Title, tight layout, save at ``dpi`` and close (the last lines of every figure)."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def style(ax, *, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None, xlog=False, legend=7):
    """The usual finish of one panel: log x axis (``xlog``), labels, title, legend of font size ``legend`` (0: none)."""
    if xlog:
        ax.set_xscale("log")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=legend)
    return ax
