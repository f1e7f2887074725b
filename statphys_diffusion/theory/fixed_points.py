r"""Fixed points of the reverse dynamics and their stability (the machinery of symmetry breaking).

Raya & Ambrogioni, "Spontaneous symmetry breaking in generative diffusion models" (NeurIPS 2023).
With the forward SDE dx = f x dt + g dW, the reverse-time drifts (in reverse time tau) are

- reverse SDE:            dx/dtau = -f x + g^2 s_t(x),
- probability-flow ODE:   dx/dtau = -f x + g^2 s_t(x) / 2,
- and the potential u_t = -log p_t itself, whose critical points solve s_t(x) = 0.

All three fixed-point equations read F(x) = a_t x + s_t(x) = 0 with the
stiffness a_t = -f/g^2 (SDE), -2 f/g^2 (ODE) or 0 (potential). For every
variance-preserving schedule f/g^2 = -1/2, so a_t = 1/2 (SDE) and 1 (ODE): in OU
time the SDE drift is x + 2 s_t(x) as in the paper. The Jacobian of the
reverse drift at a fixed point is k g^2 (a_t I + H_t) (k = 1 SDE, 1/2 ODE)
with H_t the Hessian of log p_t, so the fixed point loses stability when the
top eigenvalue of H_t reaches -a_t: -1/2 (SDE), -1 (ODE), 0 (potential:
p_t turns bimodal along that direction).

The critical times built on this are in :mod:`~statphys_diffusion.theory.symmetry_breaking`, the
central branch followed by continuation in :mod:`~statphys_diffusion.theory.central_branch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np

from .. import _checks, _progress
from .._results import TidyResult, UnpacksAs
from ..protocols import CurvatureModel, ExactMixture, ScoreModel, require, satisfies

__all__ = [
    "DYNAMICS",
    "stiffness",
    "potential",
    "fixed_point_residual",
    "central_fixed_point",
    "track_central_fixed_point",
    "fixed_points_1d",
    "FixedPoints",
    "top_hessian_eigenpairs",
    "EigenPairs",
    "stability_eigenvalues",
]


DYNAMICS = ("sde", "ode", "potential")
_DENSE_MAX = 512  # dense Hessian (eigh / solve) up to this dimension, Lanczos / MINRES above


def _check_dynamics(dynamics: str) -> str:
    return _checks.check_choice(dynamics, DYNAMICS, "dynamics")


def stiffness(schedule, t, dynamics: str = "sde"):
    """a_t in F(x) = a_t x + s_t(x): -f/g^2 (sde), -2 f/g^2 (ode), 0 (potential).

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> ou = sd.OrnsteinUhlenbeck()  # f = -1, g^2 = 2
    >>> [float(sd.stiffness(ou, 0.3, d)) for d in ("sde", "ode", "potential")]
    [0.5, 1.0, 0.0]
    """
    _check_dynamics(dynamics)
    if dynamics == "potential":
        return 0.0 * np.asarray(t, dtype=np.float64)
    f = schedule.drift_coefficient(t)
    g2 = schedule.diffusion2(t)
    k = 1.0 if dynamics == "sde" else 0.5
    return -f / (k * g2)


def _drift_scale(schedule, t, dynamics):
    """k g^2: the reverse drift's Jacobian is k g^2 (a I + H) (1 for the potential)."""
    if dynamics == "potential":
        return 1.0
    return (1.0 if dynamics == "sde" else 0.5) * float(schedule.diffusion2(t))


def potential(model: ExactMixture, x, t) -> np.ndarray:
    """u_t(x) = -log p_t(x), shape (M,).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0, 0.0], [1.0, 0.5]], 0.2)
    >>> x = np.array([[0.3, -0.2]])
    >>> bool(np.allclose(sd.potential(gm, x, 0.4), -gm.log_prob(x, 0.4)))
    True
    """
    require(model, ExactMixture, purpose="u_t = -log p_t needs log_prob")
    return -model.log_prob(x, t)


def fixed_point_residual(model: ScoreModel, x, t, dynamics: str = "sde") -> np.ndarray:
    """F(x) = a_t x + s_t(x), shape (M, d); zero exactly at the fixed points."""
    require(model, ScoreModel, purpose="F(x) = a_t x + s_t(x)")
    a = float(stiffness(model.schedule, t, dynamics))
    return a * np.asarray(x, dtype=np.float64) + model.score(x, t)


class EigenPairs(NamedTuple):
    """Output of :func:`top_hessian_eigenpairs`: unpacks as ``(eigenvalues, eigenvectors)``,
    like ``numpy.linalg.eigh``."""

    eigenvalues: np.ndarray
    """(k,) descending."""
    eigenvectors: np.ndarray
    """(d, k) unit columns, column j for ``eigenvalues[j]``."""


def top_hessian_eigenpairs(model: CurvatureModel, x, t, k: int = 1, *, dense_max_dim: int = _DENSE_MAX) -> EigenPairs:
    """Largest k eigenvalues (descending) and eigenvectors (columns) of H_t at one point x (d,).

    Dense ``eigh`` of ``model.hessian`` for d <= ``dense_max_dim`` (512) when the model has one, otherwise
    Lanczos (scipy ``eigsh``) on Hessian-vector products, never forming H.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> lam = np.array([4.0, 1.0, 0.25])  # N(0, diag(lam)): Hessian of log p_t = -(alpha^2 lam + sigma^2)^-1
    >>> gm = sd.GaussianMixture.diagonal([[0.0, 0.0, 0.0]], [lam])
    >>> t = 0.5
    >>> a2, s2 = float(gm.schedule.alpha(t)) ** 2, float(gm.schedule.sigma(t)) ** 2
    >>> ep = sd.top_hessian_eigenpairs(gm, np.zeros(3), t, k=1)
    >>> bool(np.isclose(ep.eigenvalues[0], -1 / (a2 * 4.0 + s2)))  # the flattest direction: the largest variance
    True
    """
    require(model, CurvatureModel, purpose="eigenpairs of the Hessian of log p_t")
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    d = x.shape[1]
    if d <= dense_max_dim and satisfies(model, ExactMixture):
        w, v = np.linalg.eigh(cast(ExactMixture, model).hessian(x, t)[0])
        return EigenPairs(w[::-1][:k], v[:, ::-1][:, :k])
    from scipy.sparse.linalg import eigsh

    op = _hessian_operator(model, x[0], t)
    w, v = eigsh(op, k=k, which="LA", tol=1e-9)
    order = np.argsort(w)[::-1]
    return EigenPairs(w[order], v[:, order])


def _hessian_operator(model, x, t):
    """LinearOperator for H_t at one point: the model's own if it has one, else via ``hvp``."""
    if satisfies(model, ExactMixture):
        return model.hessian_operator(x, t)
    from scipy.sparse.linalg import LinearOperator

    d = x.size
    xr = np.asarray(x, dtype=np.float64).reshape(1, d)
    return LinearOperator(
        (d, d), matvec=lambda v: model.hvp(xr, t, np.asarray(v, dtype=np.float64).reshape(1, d))[0], dtype=float
    )


def stability_eigenvalues(model: CurvatureModel, x, t, dynamics: str = "sde", k: int = 1) -> np.ndarray:
    """Top k eigenvalues of the reverse drift's Jacobian k g^2 (a_t I + H_t) at point x (d,).

    Positive means unstable along that eigenvector. For ``potential`` these are
    the eigenvalues of H_t (positive: a local maximum of p_t along it).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[0.0, 0.0]], 1.0)  # N(0, I) is stationary under OU: H_t = -I
    >>> float(sd.stability_eigenvalues(gm, np.zeros(2), 0.7)[0])  # g^2 (a_t + H) = 2 (0.5 - 1): stable
    -1.0
    """
    require(model, CurvatureModel, purpose="eigenvalues of the drift's Jacobian")
    lam, _ = top_hessian_eigenpairs(model, x, t, k)
    a = float(stiffness(model.schedule, t, dynamics))
    return _drift_scale(model.schedule, t, dynamics) * (a + lam)


def central_fixed_point(
    model: CurvatureModel,
    t,
    dynamics: str = "sde",
    x0=None,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
    linear_rtol: float = 1e-10,
):
    """Newton's method on F(x) = a_t x + s_t(x) from ``x0`` (default: the large-t guess).

    The default start alpha_t m / (1 - a_t sigma_t^2) (m the data mean) is the
    fixed point when p_t is close to N(alpha m, sigma^2 I). Newton steps solve
    (a I + H) delta = -F densely for d <= 512, by MINRES on Hessian-vector
    products otherwise. Converged when F is at the rounding level of its terms
    or the step is below ``tol`` (1 + |x|) (stiff models: the rounding level of
    s grows like eps |x| / smallest noisy variance). Raises ValueError if it
    does not converge. ``linear_rtol`` is the MINRES tolerance of each Newton step
    (networks in float32: about 1e-4, the level of their rounding).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0, 0.5], [1.0, 0.5]], 0.1)  # symmetric about x = (0, 0.5)
    >>> x = sd.central_fixed_point(gm, 2.0)
    >>> a, s2 = float(gm.schedule.alpha(2.0)), float(gm.schedule.sigma2(2.0))
    >>> c = a * a * 0.1 + s2  # the noised variance along the symmetry axis (both components share it)
    >>> bool(abs(x[0]) < 1e-10 and np.isclose(x[1], 0.5 * a / (1 - 0.5 * c)))  # x / 2 + s_t(x) = 0 (OU)
    True
    """
    require(model, CurvatureModel, purpose="Newton steps need the Hessian of log p_t")
    _check_dynamics(dynamics)
    sch = model.schedule
    t = _checks.check_time(t, sch, allow_zero=_regular(model))
    a = float(stiffness(sch, t, dynamics))
    d = model.dim
    if x0 is None:
        if abs(1.0 - a * float(sch.sigma2(t))) < 1e-8:
            raise ValueError(
                f"no well-defined centre at t={t}: the large-t fixed-point guess is singular (1 - a sigma^2 = 0); "
                "pass x0"
            )
        x = _large_t_centre(model, t, a).reshape(1, d)
    else:
        x = np.asarray(x0, dtype=np.float64).reshape(1, d).copy()
    for _ in range(max_iter):
        sx = model.score(x, t)
        F = a * x + sx
        # converged once F is at the rounding level of the terms it sums (near a critical
        # point the Jacobian is nearly singular and Newton steps stall at ~eps/margin)
        if float(np.abs(F).max()) <= 1e-13 * (float(np.abs(a * x).max()) + float(np.abs(sx).max()) + 1e-300):
            return x[0]
        if d <= _DENSE_MAX and satisfies(model, ExactMixture):
            J = a * np.eye(d) + cast(ExactMixture, model).hessian(x, t)[0]
            try:
                delta = np.linalg.solve(J, -F[0])
            except np.linalg.LinAlgError:
                raise ValueError(f"singular Jacobian at t={t}: the fixed point is degenerate") from None
        else:
            from scipy.sparse.linalg import minres

            H = _hessian_operator(model, x[0], t)
            delta, _ = minres(H, -F[0], shift=-a, rtol=linear_rtol, maxiter=min(5 * d, 1000))
        x = x + delta
        if not np.all(np.isfinite(x)):
            break
        if float(np.abs(delta).max()) <= tol * (1.0 + float(np.abs(x).max())):
            return x[0]
    raise ValueError(
        f"Newton did not converge to a central fixed point at t={t} ({dynamics}): the model may have no "
        "well-defined centre; pass a starting point x0 or a larger t"
    )


def _large_t_centre(model, t: float, a: float) -> np.ndarray:
    """alpha_t m / (1 - a_t sigma_t^2): the fixed point when p_t is close to N(alpha m, sigma^2 I)."""
    sch = model.schedule
    return float(sch.alpha(t)) * np.asarray(model.mean(), dtype=np.float64) / (1.0 - a * float(sch.sigma2(t)))


def track_central_fixed_point(
    model: CurvatureModel, times, dynamics: str = "sde", x0=None, *, progress: bool = False
) -> np.ndarray:
    """Continuation of the central fixed point along ``times`` (sorted descending), shape (len(times), d).

    Each time's Newton solve starts from the previous time's fixed point (``x0`` for the first);
    ``progress`` shows a bar over the times.
    """
    require(model, CurvatureModel, purpose="Newton steps need the Hessian of log p_t")
    times = _checks.check_times(times, model.schedule, order="decreasing", scalar=False)
    out = np.empty((times.size, model.dim))
    x = x0
    for i, t in _progress.iterate(list(enumerate(times)), progress, "central fixed point"):
        x = central_fixed_point(model, t, dynamics, x0=x)
        out[i] = x
    return out


@dataclass(frozen=True, repr=False)
class FixedPoints(UnpacksAs, TidyResult):
    """Output of :func:`fixed_points_1d`; unpacks as the former tuple ``(points, eigenvalues)``.

    Attributes
    ----------
    t : float
        The time.
    dynamics : str
        ``"sde"``, ``"ode"`` or ``"potential"`` (the drift whose fixed points these are).
    points : (n,) fixed points x* with F(x*) = a_t x* + s_t(x*) = 0, increasing
    eigenvalues : (n,) the drift's stability eigenvalue at each, c_t (a_t + H_t(x*)); negative = stable
    """

    t: float
    dynamics: str
    points: np.ndarray
    eigenvalues: np.ndarray

    _unpack = ("points", "eigenvalues")

    @property
    def stable(self) -> np.ndarray:
        """(n,) bool, eigenvalue < 0."""
        return self.eigenvalues < 0

    def to_rows(self) -> list[dict]:
        """One dict per fixed point: ``t``, ``dynamics``, ``x``, ``eigenvalue``, ``stable``."""
        return [
            {"t": self.t, "dynamics": self.dynamics, "x": float(x), "eigenvalue": float(e), "stable": bool(e < 0)}
            for x, e in zip(self.points, self.eigenvalues)
        ]

    def plot(self, ax=None):
        """The fixed points on the line with their stability eigenvalue (stable filled, unstable open); returns
        the Axes."""
        from .._results import axes

        ax = axes(ax)
        stable = self.eigenvalues < 0
        ax.scatter(self.points[stable], self.eigenvalues[stable], color="C0", label="stable")
        ax.scatter(
            self.points[~stable], self.eigenvalues[~stable], facecolors="none", edgecolors="C3", label="unstable"
        )
        ax.axhline(0.0, color="0.5", lw=0.7)
        ax.set_xlabel("fixed point x*")
        ax.set_ylabel(f"stability eigenvalue ({self.dynamics}, t = {self.t:.3g})")
        return ax


def _regular(model) -> bool:
    """True for an exact mixture without singular components (its score exists at t = t_min)."""
    return satisfies(model, ExactMixture) and not model.singular


def _check_grid(n_grid) -> int:
    n = _checks.check_positive_int(n_grid, "n_grid")
    if n < 2:
        raise ValueError(f"n_grid must be at least 2 (a grid has two ends), got {n_grid!r}")
    return n


def fixed_points_1d(model: ExactMixture, t, dynamics: str = "sde", *, x_range=None, n_grid: int = 20001) -> FixedPoints:
    """All fixed points of a 1-D model at time t and the reverse drift's stability eigenvalue at each.

    Sign changes of F(x) = a_t x + s_t(x) on a grid (default range: alpha times the data range
    padded by 4 sigma), refined by Brent's method to machine precision. Returns a
    :class:`FixedPoints` (points (n,), eigenvalues (n,); negative eigenvalue = stable), which
    unpacks as ``points, eigenvalues``.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 1e-4)  # two deltas at +-1 (almost)
    >>> late, early = sd.fixed_points_1d(gm, 0.05), sd.fixed_points_1d(gm, 3.0)
    >>> len(late.points), len(early.points)  # two memories and the saddle between; then one point
    (3, 1)
    >>> bool(np.all(late.eigenvalues[[0, 2]] < 0) and late.eigenvalues[1] > 0)  # the outer two are stable
    True
    """
    require(model, ExactMixture, purpose="the 1-D scan brackets roots between the mixture's means")
    from scipy.optimize import brentq

    if model.dim != 1:
        raise ValueError(f"fixed_points_1d needs a 1-D model, got d={model.dim}")
    sch = model.schedule
    t = _checks.check_time(t, sch, allow_zero=_regular(model))
    a = float(stiffness(sch, t, dynamics))
    if x_range is None:
        al, s = float(sch.alpha(t)), float(sch.sigma(t))
        mu = model.means[:, 0]
        spread = np.sqrt(np.max(model.covariances[:, 0, 0])) if satisfies(model, ExactMixture) else 0.0
        lo, hi = al * (mu.min() - 4 * spread) - 4 * s - 1e-3, al * (mu.max() + 4 * spread) + 4 * s + 1e-3
        # fixed points of the drifts can lie beyond the data when a_t sigma^2 < 1; widen by 1/(1 - a s^2)
        widen = 1.0 / max(1e-3, 1.0 - a * s * s) if a * s * s < 1 else 1.0
        lo, hi = lo * widen, hi * widen
    else:
        lo, hi = map(float, x_range)
    grid = np.linspace(lo, hi, _check_grid(n_grid))
    F = a * grid + model.score(grid[:, None], t)[:, 0]
    found: list[float] = []
    for i in np.nonzero(np.sign(F[:-1]) * np.sign(F[1:]) <= 0)[0]:
        if F[i] == 0:
            found.append(grid[i])
            continue
        if F[i + 1] == 0:
            continue
        found.append(brentq(lambda z: a * z + model.score(np.array([[z]]), t)[0, 0], grid[i], grid[i + 1], xtol=1e-14))
    roots = np.unique(np.round(np.asarray(found, dtype=np.float64), 13))
    if roots.size == 0:
        return FixedPoints(t, dynamics, roots, roots.copy())
    H = model.hessian(roots[:, None], t)[:, 0, 0]
    return FixedPoints(t, dynamics, roots, _drift_scale(sch, t, dynamics) * (a + H))
