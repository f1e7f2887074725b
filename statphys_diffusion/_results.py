"""The shared vocabulary of result objects (docs/user_guide/conventions.rst, "API conventions").

Every public result is a frozen dataclass; :class:`TidyResult` gives it ``to_frame()`` (pandas,
imported on first use, from the result's ``to_rows()`` of plain dicts) and a compact
``__repr__`` that shows scalars and the shapes of arrays instead of their contents.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import numpy as np


class TidyResult:
    """Mixin: ``to_frame()`` from ``to_rows()`` and a compact ``__repr__`` (use ``@dataclass(repr=False)``)."""

    def to_rows(self) -> list[dict]:  # pragma: no cover - every result defines it
        raise NotImplementedError

    def to_frame(self):
        """:meth:`to_rows` as a pandas DataFrame (pandas is imported here: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_frame needs pandas: pip install pandas (or use to_rows())") from exc
        return pd.DataFrame(self.to_rows())

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(cast(Any, self)):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                if v.size == 1:
                    parts.append(f"{f.name}={v.reshape(-1)[0]!r}")
                else:
                    parts.append(f"{f.name}=<{v.dtype} {'x'.join(map(str, v.shape))}>")
            elif isinstance(v, (list, tuple, dict)) and len(v) > 6:
                parts.append(f"{f.name}=<{type(v).__name__} of {len(v)}>")
            elif isinstance(v, float):
                parts.append(f"{f.name}={v:.6g}")
            else:
                parts.append(f"{f.name}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class UnpacksAs:
    """Mixin for a result that replaced a tuple: it unpacks (and indexes) as the members named in
    ``_unpack``, so ``a, b = f(...)`` keeps working after ``f`` returns a result."""

    _unpack: tuple[str, ...] = ()

    def _members(self) -> tuple:
        return tuple(getattr(self, name) for name in self._unpack)

    def __iter__(self):
        return iter(self._members())

    def __getitem__(self, i):
        return self._members()[i]

    def __len__(self) -> int:
        return len(self._unpack)


def estimates(**pairs) -> dict:
    """``{name: mean, name_stderr: stderr}`` for each ``name=(mean, stderr)``: the keyword
    arguments of a result's estimate fields in the ``*_stderr`` vocabulary."""
    out: dict = {}
    for name, (value, stderr) in pairs.items():
        out[name], out[f"{name}_stderr"] = value, stderr
    return out


def axes(ax=None):
    """``ax``, or the current matplotlib Axes (matplotlib imported here) for ``plot(ax=None)``."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.gca()


MAX_COORDINATE_COLUMNS = 16


def coordinates(prefix: str, point: np.ndarray) -> dict:
    """``{prefix_0: v_0, ...}`` for a point of at most :data:`MAX_COORDINATE_COLUMNS` coordinates, else ``{}``.

    Tables stay one row per natural unit with plain values; points of higher dimension
    (images) are left to the result's arrays."""
    p = np.asarray(point).reshape(-1)
    if p.size > MAX_COORDINATE_COLUMNS:
        return {}
    return {f"{prefix}_{j}": float(v) for j, v in enumerate(p)}


MAX_LEGEND_ENTRIES = 12


def band(ax, x, y, stderr=None, *, label: str | None = None, **line):
    """A curve with a shaded +-1 standard-error band (the package's one way to draw an estimate)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    (handle,) = ax.plot(x, y, label=label, **line)
    if stderr is not None:
        se = np.asarray(stderr, dtype=np.float64)
        ax.fill_between(x, y - se, y + se, color=handle.get_color(), alpha=0.25, lw=0)
    return handle


def legend(ax, **kwargs):
    """A legend unless it would list more than :data:`MAX_LEGEND_ENTRIES` entries (hundreds of
    components would overflow the figure); then the number of curves goes in a text note instead."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if len(handles) > MAX_LEGEND_ENTRIES:
        ax.text(
            0.99,
            0.01,
            f"{len(handles)} curves (legend omitted)",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.4",
        )
        return None
    return ax.legend(**kwargs)
