r"""Attractor census of a denoiser: memorised, spurious and unresolved states (result 2).

Pham, Raya, Negri, Zaki, Ambrogioni & Krotov (2025) read a diffusion model as an
associative memory: at a fixed noise level the denoiser map x -> D_t(x) is
iterated to its fixed points x* = D_t(x*). Below capacity (small N) every
training point is a fixed point with its own basin (memorisation); far above it
the attractors are new points (generalisation); near the boundary stable fixed
points appear that are not training points (spurious states).

The census iterates the map from many starts, merges the end points that
coincide, and classifies each fixed point:

- ``training``: within ``match_tol`` times the nearest-neighbour spacing of its
  nearest training point (the spacing of point i is its distance to the
  nearest other training point);
- ``spurious``: not a training point, and stable, i.e. the spectral radius of
  the Jacobian of D_t at x* is below 1 (power iteration on Jacobian-vector
  products: exact Hessian-vector products for mixtures, central differences of
  ``denoise`` for any other denoiser);
- ``unstable``: a fixed point whose Jacobian has spectral radius >= 1.

Starts whose iteration did not settle within ``max_iter`` steps are counted as
unresolved. Basin fractions are the fractions of starts that end at each point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from .. import _checks, _progress
from .._results import TidyResult, axes, legend
from ..citations import references
from ..protocols import DenoiseFunction, Denoiser, ExactMixture, require, satisfies

__all__ = ["AttractorCensus", "attractor_census"]


@dataclass(frozen=True, repr=False)
class AttractorCensus(TidyResult):
    """Fixed points of x -> D_t(x) reached from a set of starts.

    Attributes
    ----------
    t : float
    points : (A, d) distinct fixed points
    kind : (A,) array of {"training", "spurious", "unstable"}
    basin : (A,) fraction of all starts ending at each point
    spectral_radius : (A,) of the Jacobian of D_t at each point (NaN if not computed)
    nearest_index, nearest_distance : (A,) nearest training point (-1 / NaN without ``train``)
    assignment : (M,) index into ``points`` for each start, -1 if unresolved
    unresolved_fraction : float
    """

    t: float
    points: np.ndarray
    kind: np.ndarray
    basin: np.ndarray
    spectral_radius: np.ndarray
    nearest_index: np.ndarray
    nearest_distance: np.ndarray
    assignment: np.ndarray
    unresolved_fraction: float

    def to_rows(self) -> list[dict]:
        """One dict per attractor: ``t``, ``attractor``, ``kind``, ``basin``, ``spectral_radius``,
        ``nearest_index``, ``nearest_distance``."""
        return [
            {
                "t": float(self.t),
                "attractor": a,
                "kind": str(self.kind[a]),
                "basin": float(self.basin[a]),
                "spectral_radius": float(self.spectral_radius[a]),
                "nearest_index": int(self.nearest_index[a]),
                "nearest_distance": float(self.nearest_distance[a]),
            }
            for a in range(self.points.shape[0])
        ]

    def plot(self, ax=None):
        """Basin of each attractor against its distance to the nearest training point, by kind; returns the Axes."""
        ax = axes(ax)
        for kind, colour in (("training", "C0"), ("spurious", "C3"), ("unstable", "C7")):
            sel = self.kind == kind
            if sel.any():
                ax.scatter(
                    self.nearest_distance[sel], self.basin[sel], s=12, color=colour, label=f"{kind} ({sel.sum()})"
                )
        ax.set_xlabel("distance to the nearest training point")
        ax.set_ylabel("basin (fraction of starts)")
        ax.set_title(f"attractors of D_t at t = {self.t:.3g}; unresolved {self.unresolved_fraction:.2f}", fontsize=9)
        legend(ax, fontsize=7)
        return ax

    @property
    def n_memorized(self) -> int:
        """Distinct training points found as attractors."""
        return int(np.unique(self.nearest_index[self.kind == "training"]).size)

    @property
    def n_spurious(self) -> int:
        return int(np.sum(self.kind == "spurious"))

    def summary(self) -> dict:
        """Counts and basin fractions per kind."""
        out = {"t": self.t, "n_memorized": self.n_memorized, "n_spurious": self.n_spurious}
        for k in ("training", "spurious", "unstable"):
            out[f"basin_{k}"] = float(self.basin[self.kind == k].sum())
        out["unresolved"] = self.unresolved_fraction
        return out


def _spectral_radius(model, x: np.ndarray, t: float, rng, n_iter: int = 40) -> np.ndarray:
    """|largest eigenvalue| of the Jacobian of D_t at each row of x (power iteration, batched)."""
    from .geometric import _jvp

    v = rng.standard_normal(x.shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    est = np.zeros(x.shape[0])
    for _ in range(n_iter):
        jv = _jvp(model, x, t, v)
        norm = np.linalg.norm(jv, axis=1)
        est = norm
        v = jv / np.where(norm > 0, norm, 1.0)[:, None]
    return est


@references("pham2025")
def attractor_census(
    model: DenoiseFunction,
    starts,
    t: float,
    *,
    train=None,
    max_iter: int = 1000,
    tol: float = 1e-7,
    match_tol: float = 0.1,
    merge_tol: float | None = None,
    check_stability: bool = True,
    rng: np.random.Generator | None = None,
    progress: bool = False,
) -> AttractorCensus:
    """Iterate x <- D_t(x) from ``starts`` to fixed points and classify them.

    Parameters
    ----------
    model : object with ``denoise(x, t)`` (exact model or wrapped network)
    starts : (M, d) array
    t : float
        Noise level (time of the model's schedule). (The old order
        ``attractor_census(model, t, starts)`` still works, with a DeprecationWarning.)
    train : (N, d) array, optional
        Training set; defaults to ``model.points`` when the model has them.
    max_iter : int
    tol : float
        A start has converged when |D_t(x) - x| <= tol (1 + |x|).
    match_tol : float
        A fixed point is a training point when within ``match_tol`` times that
        point's nearest-neighbour spacing.
    merge_tol : float, optional
        End points closer than this are one attractor (default: 1e-3 times the
        median training spacing, or 1e-4 (1 + |x|) without a training set).
    check_stability : bool
        Compute the Jacobian's spectral radius (2 x 40 extra denoiser calls per attractor).
    rng : numpy Generator, optional (power-iteration starts)
    progress : bool
    """
    starts, t = _checks.point_then_time(starts, t, "attractor_census")
    require(model, DenoiseFunction, purpose="the census iterates D_t(x)")
    x = _checks.as_float_array(starts, "starts", dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"starts must have shape (M, d) with M >= 1, got {x.shape}")
    if satisfies(model, Denoiser):  # a schedule, where the model has one, validates t
        t = float(_checks.check_time(t, cast(Denoiser, model).schedule, "t", allow_zero=False))
    else:
        t = _checks.check_real(t, "t", lo=0.0, lo_open=True)
    max_iter = _checks.check_positive_int(max_iter, "max_iter")
    if not (tol > 0 and match_tol > 0):
        raise ValueError("tol and match_tol must be positive")
    rng = _checks.check_rng(rng)
    if train is None and satisfies(model, ExactMixture) and cast(ExactMixture, model).singular:
        train = cast(ExactMixture, model).means  # a point cloud's components are its training points
    y = None
    if train is not None:
        y = _checks.as_float_array(train, "train", dtype=np.float64)
        if y.ndim != 2 or y.shape[1] != x.shape[1] or y.shape[0] < 2:
            raise ValueError(f"train must have shape (N, {x.shape[1]}) with N >= 2, got {y.shape}")

    # iterate the denoiser map; only unconverged rows are updated
    active = np.ones(x.shape[0], dtype=bool)
    steps = _progress.iterate(range(max_iter), progress, f"census t={t:.3g}")
    for _ in steps:
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        new = np.asarray(model.denoise(x[idx], t), dtype=np.float64)
        moved = np.linalg.norm(new - x[idx], axis=1)
        x[idx] = new
        active[idx[moved <= tol * (1 + np.linalg.norm(new, axis=1))]] = False
    converged = ~active

    # spacing of the training set (distance of each point to its nearest other point)
    spacing = None
    if y is not None:
        from ..nearest import nearest_neighbours

        spacing = nearest_neighbours(y, y, k=2).distances[:, 1]
    if merge_tol is None:
        merge_tol = 1e-3 * float(np.median(spacing)) if spacing is not None else None

    # greedy merge of converged end points
    reps: list[np.ndarray] = []
    assignment = np.full(x.shape[0], -1, dtype=np.int64)
    for i in np.flatnonzero(converged):
        tol_i = merge_tol if merge_tol is not None else 1e-4 * (1 + np.linalg.norm(x[i]))
        if reps:
            dist = np.linalg.norm(np.asarray(reps) - x[i], axis=1)
            j = int(np.argmin(dist))
            if dist[j] <= tol_i:
                assignment[i] = j
                continue
        reps.append(x[i].copy())
        assignment[i] = len(reps) - 1
    pts = np.asarray(reps).reshape(-1, x.shape[1])
    a = pts.shape[0]
    basin = np.bincount(assignment[assignment >= 0], minlength=a) / x.shape[0]
    radius = _spectral_radius(model, pts, t, rng) if (check_stability and a) else np.full(a, np.nan)
    near_i = np.full(a, -1, dtype=np.int64)
    near_d = np.full(a, np.nan)
    kind = np.empty(a, dtype=object)
    if y is not None and a:
        from ..nearest import nearest_neighbours

        nn = nearest_neighbours(pts, y, k=1)
        near_i, near_d = nn.indices[:, 0], nn.distances[:, 0]
    for j in range(a):
        if spacing is not None and near_d[j] <= match_tol * spacing[near_i[j]]:
            kind[j] = "training"
        elif np.isfinite(radius[j]) and radius[j] >= 1.0:
            kind[j] = "unstable"
        else:
            kind[j] = "spurious"
    return AttractorCensus(
        t=t,
        points=pts,
        kind=kind.astype(str) if a else np.array([], dtype=str),
        basin=basin,
        spectral_radius=radius,
        nearest_index=near_i,
        nearest_distance=near_d,
        assignment=assignment,
        unresolved_fraction=float(np.mean(~converged)),
    )
