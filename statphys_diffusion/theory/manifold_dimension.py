r"""Black-box manifold dimension from the score (Achilli et al. 2024, "Losing dimensions"; after
Stanczuk et al., "Your diffusion model secretly knows the dimension of the data manifold").

At a point x_0 and time t, take n random orthonormal probes q_i (rows of a random orthogonal
matrix, the same at every t) and the score matrix with rows

    symmetrised (default):  S_i = sigma_t [s_t(alpha x_0 + sigma q_i) - s_t(alpha x_0 - sigma q_i)] / 2,
    plain (their code):     S_i = sigma_t s_t(alpha x_0 + sigma q_i).

To first order S_i = sigma^2 H q_i with H the Hessian of log p_t at alpha x_0, so the singular
values of S are sigma^2 |eig(H)| (Q orthogonal). The plain form adds the rank-one term
sigma s_t(alpha x_0) to every row; their estimator keeps it (and drops the largest singular
value to compensate), which undercounts the dimension by one when that term is not the largest.
For data near an m-dimensional manifold at small t, d - m eigenvalues of H are about -1/sigma^2
(normal directions) and m are much smaller (tangent): normalised by the largest, the normal
singular values are ~1 and the tangent ones ~0. On a linear manifold with tangent variances
lambda_k the normalised tangent value is exactly sigma^2 / (alpha^2 lambda_k + sigma^2), which
crosses 1/2 where alpha^2 lambda_k = sigma^2: the time at which that direction is lost.

Rules for the dimension (the number of singular values below the spectral gap):

- ``largest_gap``: the largest drop of log singular value between neighbours;
- ``cliff``: the largest second difference of the log spectrum (the sharpest bend), a reading
  of the "cliff" the paper's figures show (their plotting notebook was not available here);
- ``level``: the count of normalised singular values below ``level`` (default 1/2), the rule
  behind :meth:`ManifoldDimension.loss_times`.

The gap rules need the tangent values well below the normal ones and closer to each other than
to 1 in log scale: a tangent spectrum spread over several decades (variances 4 and 1/4 at
sigma^2 = 0.02) puts the largest gap inside it and undercounts. The ``level`` rule has no such
ambiguity but answers the different question "how many directions are still tangent at this t".

With n < d probes the spectrum has n values and the count estimates the tangent dimension seen
by those probes only; n = d (the default) gives the full count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from .._progress import iterate
from .._results import TidyResult, axes
from ..citations import references
from ..protocols import ScoreModel, require

__all__ = ["ManifoldDimension", "manifold_dimension"]

RULES = ("largest_gap", "cliff", "level")


def _dimension(sv_norm: np.ndarray, rule: str, level: float) -> int:
    """Number of singular values below the gap of a decreasing normalised spectrum."""
    n = sv_norm.size
    if rule == "level":
        return int(np.sum(sv_norm < level))
    logs = np.log(np.maximum(sv_norm, 1e-300))
    if n < 2:
        return 0
    if rule == "largest_gap":
        drop = logs[:-1] - logs[1:]
        return int(n - (np.argmax(drop) + 1))
    if n < 3:
        return _dimension(sv_norm, "largest_gap", level)
    # second difference at i + 1; most negative at the last value before the spectrum falls off
    bend = logs[:-2] - 2 * logs[1:-1] + logs[2:]
    return int(n - (np.argmax(-bend) + 2))


@dataclass(frozen=True, repr=False)
class ManifoldDimension(TidyResult):
    """Output of :func:`manifold_dimension`.

    Attributes
    ----------
    times : (T,)
    singular_values : (T, n) decreasing, normalised by the largest at each time
    scale : (T,) the largest singular value (sigma^2 |H|_max) before normalisation
    dimension : (T,) the count below the gap by ``rule``
    rule : str; level : float
    """

    times: np.ndarray
    singular_values: np.ndarray
    scale: np.ndarray
    dimension: np.ndarray
    rule: str
    level: float

    def __repr__(self) -> str:
        return (
            f"ManifoldDimension(times={self.times.size}, probes={self.singular_values.shape[1]}, rule={self.rule!r}, "
            f"dimension {int(self.dimension.min())}..{int(self.dimension.max())})"
        )

    def loss_times(self, level: float | None = None) -> np.ndarray:
        """Per direction (ordered from the smallest singular value up), the time at which its
        normalised singular value first reaches ``level`` (default: the result's ``level``),
        interpolated in log t between grid times; NaN if it never does on the grid (or already
        had at the first time)."""
        lev = self.level if level is None else float(level)
        order = np.argsort(self.times)
        t, sv = self.times[order], self.singular_values[order][:, ::-1]  # ascending per time
        out = np.full(sv.shape[1], np.nan)
        for j in range(sv.shape[1]):
            above = np.flatnonzero(sv[:, j] >= lev)
            if above.size == 0 or above[0] == 0:
                continue
            i = above[0]
            lo, hi = sv[i - 1, j], sv[i, j]
            f = (lev - lo) / (hi - lo) if hi > lo else 1.0
            out[j] = float(np.exp(np.log(t[i - 1]) + f * (np.log(t[i]) - np.log(t[i - 1]))))
        return out

    def to_rows(self) -> list[dict]:
        """One plain dict per (time, rank)."""
        return [
            {"t": float(t), "rank": j, "singular_value": float(v), "dimension": int(self.dimension[i])}
            for i, t in enumerate(self.times)
            for j, v in enumerate(self.singular_values[i])
        ]

    def plot(self, ax=None):
        """The estimated dimension against t (log t axis, steps); returns the Axes."""
        ax = axes(ax)
        ax.step(self.times, self.dimension, where="mid", marker="o", ms=3, label=f"dimension ({self.rule})")
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("dimension")
        return ax


@references("achilli2024")
def manifold_dimension(
    model: ScoreModel,
    x0,
    times,
    *,
    n_probes: int | None = None,
    symmetrize: bool = True,
    rule: str = "largest_gap",
    level: float = 0.5,
    rng=None,
    progress: bool = False,
) -> ManifoldDimension:
    """Singular spectrum of the probed score matrix at x0 and the dimension it shows (module docstring).

    Parameters
    ----------
    model : score model (``schedule``, ``score(x, t)``): exact or a wrapped network
    x0 : (d,) or (1, d) array, the point (a training point, a sample)
    times : scalar or (T,) times with alpha, sigma > 0
    n_probes : int, at most d (default d)
    symmetrize : bool
        Antithetic probes (cancels the mean-score term; 2 n score evaluations per time).
    rule : {"largest_gap", "cliff", "level"}
    level : float in (0, 1), for ``rule="level"`` and :meth:`ManifoldDimension.loss_times`
    rng : None, int or Generator (the orthogonal probes)
    progress : bool

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> basis = np.eye(8)[:, :3]  # a 3-dimensional plane in 8 dimensions
    >>> lm = sd.LinearManifold(basis, [1.0, 1.0, 1.0])
    >>> res = sd.manifold_dimension(lm, np.zeros(8), [0.01], rng=0)
    >>> int(res.dimension[0])
    3
    """
    require(model, ScoreModel, purpose="the dimension estimator differentiates its score")
    x = _checks.as_float_array(x0, "x0", dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"x0 must be one point of shape (d,) or (1, d), got {x.shape}")
    d = x.size
    if model.dim not in (None, d):
        raise ValueError(f"x0 has {d} coordinates but the model has dimension {model.dim}")
    n = d if n_probes is None else _checks.check_positive_int(n_probes, "n_probes")
    if n > d:
        raise ValueError(f"n_probes must be at most d = {d} (orthonormal probes), got {n}")
    _checks.check_choice(rule, RULES, "rule")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    sch = model.schedule
    ts = _checks.check_times(times, sch, allow_zero=False, positive_alpha=True)
    rng = _checks.check_rng(rng)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = (q * np.sign(np.diag(r)))[:, :n].T  # n orthonormal rows, Haar-distributed
    sv_all, scale, dims = np.empty((ts.size, n)), np.empty(ts.size), np.empty(ts.size, dtype=np.int64)
    it = iterate(range(ts.size), progress, "manifold dimension")
    for i in it:
        t = float(ts[i])
        a, s = float(sch.alpha(t)), float(sch.sigma(t))
        centre = a * x
        if symmetrize:
            both = np.asarray(model.score(np.vstack([centre + s * q, centre - s * q]), t), dtype=np.float64)
            mat = 0.5 * s * (both[:n] - both[n:])
        else:
            mat = s * np.asarray(model.score(centre + s * q, t), dtype=np.float64)
        sv = np.linalg.svd(mat, compute_uv=False)
        top = sv[0] if sv[0] > 0 else 1.0
        sv_all[i], scale[i] = sv / top, sv[0]
        dims[i] = _dimension(sv_all[i], rule, level)
    return ManifoldDimension(times=ts, singular_values=sv_all, scale=scale, dimension=dims, rule=rule, level=level)
