r"""Spontaneous symmetry breaking: fixed points, their stability, critical times.

Raya & Ambrogioni, "Spontaneous symmetry breaking in generative diffusion
models" (NeurIPS 2023); speciation time from Biroli, Bonnaire, de Bortoli &
Mezard, "Dynamical regimes of diffusion models" (2024).

Fixed points. With the forward SDE dx = f x dt + g dW, the reverse-time drifts
(in reverse time tau) are

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

Closed forms (two deltas at +-m in 1-D, any VP schedule, sigma^2 = 1 - alpha^2;
H_t(0) = alpha^2 m^2 / sigma^4 - 1 / sigma^2):

- potential: alpha^2 m^2 = sigma^2, i.e. alpha^2 = 1 / (1 + m^2) (OU: t = 1/2 log(1 + m^2)),
- SDE: alpha^4 + 2 m^2 alpha^2 - 1 = 0, i.e. alpha^2 = sqrt(m^4 + 1) - m^2 (m = 1: sqrt 2 - 1),
- ODE: alpha^2 = 1 - m^2 for m < 1; for m >= 1 the centre is never stable.

The speciation time t_S solves alpha_t^2 Lambda = sigma_t^2 for the top
eigenvalue Lambda of the data covariance (Biroli et al. 2024); for OU it is
1/2 log(1 + Lambda) ~ 1/2 log Lambda.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _checks, _progress
from .._results import TidyResult, UnpacksAs, axes
from ..protocols import ExactMixture, Moments, Samplable, require, satisfies
from ..schedules import OrnsteinUhlenbeck, Schedule

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
    "symmetry_breaking_time",
    "SymmetryBreaking",
    "speciation_time",
    "two_delta_critical_alpha2",
    "two_delta_broken_fixed_points",
    "CloningResult",
    "cloning_agreement",
    "exact_cloning_agreement",
    "ExactCloning",
]

DYNAMICS = ("sde", "ode", "potential")
_DENSE_MAX = 512  # dense Hessian (eigh / solve) up to this dimension, Lanczos / MINRES above


def _check_dynamics(dynamics: str) -> str:
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics must be one of {DYNAMICS}, got {dynamics!r}")
    return dynamics


def stiffness(schedule, t, dynamics: str = "sde"):
    """a_t in F(x) = a_t x + s_t(x): -f/g^2 (sde), -2 f/g^2 (ode), 0 (potential)."""
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


def potential(model, x, t) -> np.ndarray:
    """u_t(x) = -log p_t(x), shape (M,)."""
    return -model.log_prob(x, t)


def fixed_point_residual(model, x, t, dynamics: str = "sde") -> np.ndarray:
    """F(x) = a_t x + s_t(x), shape (M, d); zero exactly at the fixed points."""
    a = float(stiffness(model.schedule, t, dynamics))
    return a * np.asarray(x, dtype=np.float64) + model.score(x, t)


class EigenPairs(NamedTuple):
    """Output of :func:`top_hessian_eigenpairs`: unpacks as ``(eigenvalues, eigenvectors)``,
    like ``numpy.linalg.eigh``."""

    eigenvalues: np.ndarray
    """(k,) descending."""
    eigenvectors: np.ndarray
    """(d, k) unit columns, column j for ``eigenvalues[j]``."""


def top_hessian_eigenpairs(model, x, t, k: int = 1, *, dense_max_dim: int = _DENSE_MAX) -> EigenPairs:
    """Largest k eigenvalues (descending) and eigenvectors (columns) of H_t at one point x (d,).

    Dense ``eigh`` of ``model.hessian`` for d <= ``dense_max_dim`` (512) when the model has one, otherwise
    Lanczos (scipy ``eigsh``) on Hessian-vector products, never forming H.
    """
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    d = x.shape[1]
    if d <= dense_max_dim and satisfies(model, ExactMixture):
        w, v = np.linalg.eigh(model.hessian(x, t)[0])
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


def stability_eigenvalues(model, x, t, dynamics: str = "sde", k: int = 1) -> np.ndarray:
    """Top k eigenvalues of the reverse drift's Jacobian k g^2 (a_t I + H_t) at point x (d,).

    Positive means unstable along that eigenvector. For ``potential`` these are
    the eigenvalues of H_t (positive: a local maximum of p_t along it).
    """
    lam, _ = top_hessian_eigenpairs(model, x, t, k)
    a = float(stiffness(model.schedule, t, dynamics))
    return _drift_scale(model.schedule, t, dynamics) * (a + lam)


def central_fixed_point(
    model, t, dynamics: str = "sde", x0=None, *, tol: float = 1e-10, max_iter: int = 100, linear_rtol: float = 1e-10
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
    """
    _check_dynamics(dynamics)
    sch = model.schedule
    t = _checks.check_time(t, sch, allow_zero=not getattr(model, "singular", True))
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
            J = a * np.eye(d) + model.hessian(x, t)[0]
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


def track_central_fixed_point(model, times, dynamics: str = "sde", x0=None, *, progress: bool = False) -> np.ndarray:
    """Continuation of the central fixed point along ``times`` (sorted descending), shape (len(times), d).

    Each time's Newton solve starts from the previous time's fixed point (``x0`` for the first);
    ``progress`` shows a bar over the times.
    """
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


def fixed_points_1d(model, t, dynamics: str = "sde", *, x_range=None, n_grid: int = 20001) -> FixedPoints:
    """All fixed points of a 1-D model at time t and the reverse drift's stability eigenvalue at each.

    Sign changes of F(x) = a_t x + s_t(x) on a grid (default range: alpha times the data range
    padded by 4 sigma), refined by Brent's method to machine precision. Returns a
    :class:`FixedPoints` (points (n,), eigenvalues (n,); negative eigenvalue = stable), which
    unpacks as ``points, eigenvalues``.
    """
    from scipy.optimize import brentq

    if model.dim != 1:
        raise ValueError(f"fixed_points_1d needs a 1-D model, got d={model.dim}")
    sch = model.schedule
    t = _checks.check_time(t, sch, allow_zero=not getattr(model, "singular", True))
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
    grid = np.linspace(lo, hi, n_grid)
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


@dataclass(frozen=True, repr=False)
class SymmetryBreaking(TidyResult):
    """Result of :func:`symmetry_breaking_time`.

    Attributes
    ----------
    time : float
        Forward time at which the central fixed point loses stability (NaN if
        it never is stable, or never loses stability, on the scanned range).
    direction : (d,) array
        Top Hessian eigenvector at the critical time (the unstable direction).
    fixed_point : (d,) array
        The central fixed point at the critical time.
    dynamics : str
    times, margin : arrays
        The scan: margin = lambda_max(H_t) + a_t at the tracked centre
        (negative: stable), times in decreasing order.
    note : str
    """

    time: float
    direction: np.ndarray
    fixed_point: np.ndarray
    dynamics: str
    times: np.ndarray
    margin: np.ndarray
    note: str = ""

    def to_rows(self) -> list[dict]:
        """The scan, one dict per tracked time: t, margin (the critical time is :attr:`time`)."""
        return [{"t": float(t), "margin": float(m)} for t, m in zip(self.times, self.margin)]

    def plot(self, ax=None, *, color: str = "k", label: str | None = None):
        """The margin of the central fixed point against t (symlog) and the critical time; returns the Axes.

        ``color`` styles the scan and its critical time; ``label`` names the scan (default
        ``"margin (<dynamics>)"``), so the three dynamics overlay on one Axes.
        """
        ax = axes(ax)
        name = f"margin ({self.dynamics})" if label is None else label
        ax.plot(self.times, self.margin, "-o", color=color, ms=2.5, label=name)
        ax.axhline(0.0, color="grey", lw=0.6)
        if np.isfinite(self.time):
            ax.axvline(self.time, color=color, ls="--", lw=1, label=f"t_c = {self.time:.4g}")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel("t")
        ax.set_ylabel("lambda_max(H_t) + a_t at the central fixed point")
        ax.legend(fontsize=7)
        return ax


def _warn_nan(note: str) -> None:
    import warnings

    warnings.warn(f"symmetry_breaking_time returns NaN: {note} (see the result's note)", RuntimeWarning, stacklevel=3)


def symmetry_breaking_time(
    model,
    dynamics: str = "sde",
    *,
    log_snr_range=(-12.0, 12.0),
    n_grid: int = 60,
    xtol: float = 1e-12,
    progress: bool = False,
) -> SymmetryBreaking:
    """First time (coming from large t) at which the central fixed point changes character.

    Tracks the central fixed point from large t in steps of log-snr (at most
    range / ``n_grid``, halved whenever Newton fails or the margin jumps by
    more than 0.1 max(1, |margin|)), finds the first sign change of lambda_max(H_t(x*)) + a_t
    from negative (stable) to positive, and refines it with Brent's method
    (re-solving the fixed point at each trial time), or by bisection when the
    tracked branch ends (a fold). ``dynamics``: ``"sde"`` (the paper's definition),
    ``"ode"`` or ``"potential"`` (see the module docstring; they give
    different times).
    """
    from scipy.optimize import brentq

    _check_dynamics(dynamics)
    sch = model.schedule
    hi_t = float(sch.default_t_start)
    ls_lo = max(float(log_snr_range[0]), float(sch.log_snr(hi_t)))
    ls_hi = min(float(log_snr_range[1]), float(sch.log_snr(sch.t_min + 1e-9 * max(1.0, hi_t))))
    if not ls_hi > ls_lo:
        raise ValueError(f"log_snr_range {log_snr_range} does not overlap the schedule's range")

    def t_of(ls):
        return float(np.clip(sch.t_of_snr(np.exp(ls)), sch.t_min + 1e-12, hi_t))

    def solve(t, x0):
        xs = central_fixed_point(model, t, dynamics, x0=x0, max_iter=30)
        lam, _ = top_hessian_eigenpairs(model, xs, t, 1)
        return xs, float(lam[0]) + float(stiffness(sch, t, dynamics))

    # Adaptive continuation in log-snr: a step is accepted only if Newton converges and the
    # margin changes by at most dm_max; otherwise it is halved. This keeps the tracking on the
    # central branch: past a bifurcation Newton may otherwise land on a stable broken branch
    # (a jump in the margin) and miss the crossing.
    h_max = (ls_hi - ls_lo) / max(1, n_grid - 1)
    h_min = h_max / 256
    dm_max = 0.1
    bar = _progress.bar(progress, f"symmetry breaking ({dynamics})", 100)
    ls = ls_lo
    t = t_of(ls)
    x, m = solve(t, None)
    times, margin, points = [t], [m], [x]
    if m >= 0:
        note = "the central fixed point is not stable even at the largest time scanned"
        _warn_nan(note)
        nan = np.full(model.dim, np.nan)
        return SymmetryBreaking(np.nan, nan, x, dynamics, np.array(times), np.array(margin), note)
    h = h_max
    cross = None
    lost = False
    while ls < ls_hi:
        ls_new = min(ls + h, ls_hi)
        t_new = t_of(ls_new)
        try:
            x_new, m_new = solve(t_new, x)
            ok = abs(m_new - m) <= dm_max * max(1.0, abs(m)) or m_new >= 0 and h <= h_min
        except ValueError:
            ok, x_new, m_new = False, None, np.nan
        if not ok and h > h_min:
            h = max(h / 2, h_min)
            continue
        if x_new is None:
            lost = True
            cross = len(times)
            times.append(t_new)
            margin.append(np.nan)
            points.append(np.full(model.dim, np.nan))
            break
        ls, t, x, m = ls_new, t_new, x_new, m_new
        times.append(t)
        margin.append(m)
        points.append(x)
        if bar is not None:
            bar.n = int(100 * (ls - ls_lo) / (ls_hi - ls_lo))
            bar.refresh()
        if m >= 0:
            cross = len(times) - 1
            break
        h = min(h * 1.5, h_max)
    if bar is not None:
        bar.close()
    ts, ms, pts = np.array(times), np.array(margin), np.array(points)
    if cross is None:
        nan = np.full(model.dim, np.nan)
        note = "no loss of stability on the scanned range"
        _warn_nan(note)
        return SymmetryBreaking(np.nan, nan, pts[-1], dynamics, ts, ms, note)
    start = pts[cross - 1]

    def g(t):
        xc = central_fixed_point(model, t, dynamics, x0=start)
        lam, _ = top_hessian_eigenpairs(model, xc, t, 1)
        return float(lam[0]) + float(stiffness(sch, t, dynamics))

    lo, hi = float(ts[cross]), float(ts[cross - 1])
    note = ""
    try:
        if lost:
            raise ValueError("branch lost")
        tc = brentq(g, lo, hi, xtol=xtol, rtol=1e-14)
    except ValueError:
        # imperfect bifurcation: the branch folds (its stability margin reaches 0 where it
        # ends). Bisect on "a stable fixed point continues the branch at t".
        last = float(ms[cross - 1])
        note = (
            "the tracked centre could not be continued past this time (Newton found no nearby fixed point): "
            f"a fold of an imperfect bifurcation, or a numerical failure if the margin was still clearly "
            f"negative (last margin {last:.3g}); time found by bisection"
        )
        while hi - lo > xtol * max(1.0, hi):
            mid = 0.5 * (lo + hi)
            try:
                stable = g(mid) < 0
            except ValueError:
                stable = False
            lo, hi = (lo, mid) if stable else (mid, hi)
        tc = hi
    xc = central_fixed_point(model, tc, dynamics, x0=start)
    _, vec = top_hessian_eigenpairs(model, xc, tc, 1)
    return SymmetryBreaking(tc, vec[:, 0], xc, dynamics, ts[: cross + 1], ms[: cross + 1], note)


def speciation_time(
    model=None, schedule=None, *, top_eigenvalue: float | None = None, data=None, form: str = "exact"
) -> float:
    r"""Speciation time t_S for a data covariance whose top eigenvalue is Lambda (Biroli et al. 2024).

    ``form="exact"`` (default): the time at which alpha_t^2 Lambda = sigma_t^2, i.e. snr_S = 1 / Lambda,
    where the centre of the data's Gaussian approximation stops being the only attractor; on the
    Ornstein-Uhlenbeck schedule t_S = 1/2 log(1 + Lambda).
    ``form="paper"``: the paper's large-Lambda form t_S = 1/2 log Lambda (OU; their Table 1, e.g.
    CIFAR-10 Lambda = 16.72 gives 1.4083), mapped to other schedules by equal snr,
    snr_S = 1 / (Lambda - 1); it needs Lambda > 1. The two agree only for large Lambda: they differ
    by 1/2 log(1 + 1/Lambda) in OU time (0.14 at Lambda = 3, about 40 steps of the DDPM linear
    schedule there).

    Lambda comes from ``top_eigenvalue``, from ``data`` (an (N, d) array; its
    :func:`~statphys_diffusion.covariance_spectrum`), or from ``model.covariance()``, in that
    order. The schedule defaults to ``model.schedule``, else Ornstein-Uhlenbeck.
    """
    if form not in ("exact", "paper"):
        raise ValueError(f"form must be 'exact' or 'paper', got {form!r}")
    given = [v is not None for v in (top_eigenvalue, data, model)]
    if not any(given):
        raise ValueError("give top_eigenvalue, data (an (N, d) array) or a model with covariance()")
    if top_eigenvalue is None and data is not None:
        from ..spectrum import covariance_spectrum

        top_eigenvalue = covariance_spectrum(data).top
    elif top_eigenvalue is None:
        if not satisfies(model, Moments):
            raise ValueError(
                f"model must have covariance() (an exact model), got {type(model).__name__}: "
                "pass data=array or top_eigenvalue= instead"
            )
        top_eigenvalue = float(np.linalg.eigvalsh(model.covariance())[-1])
    if isinstance(top_eigenvalue, bool):
        raise ValueError("top_eigenvalue must be a positive number")
    lam = float(top_eigenvalue)
    if not (lam > 0 and np.isfinite(lam)):
        raise ValueError(f"top_eigenvalue must be positive and finite, got {lam}")
    if form == "paper" and not lam > 1:
        raise ValueError(f"form='paper' (t_S = 1/2 log Lambda) needs Lambda > 1, got {lam}")
    if schedule is None:
        schedule = getattr(model, "schedule", None)
    sch = schedule if schedule is not None else OrnsteinUhlenbeck()
    if not isinstance(sch, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {type(sch).__name__}")
    return float(sch.t_of_snr(1.0 / lam if form == "exact" else 1.0 / (lam - 1.0)))


def two_delta_critical_alpha2(m: float, dynamics: str = "sde") -> float:
    """Closed-form alpha^2 at the critical time for deltas at +-m (any VP schedule); NaN if none."""
    _check_dynamics(dynamics)
    m = float(m)
    if not m > 0:
        raise ValueError(f"m must be positive, got {m}")
    m2 = m * m
    if dynamics == "potential":
        return 1.0 / (1.0 + m2)
    if dynamics == "sde":
        return float(np.sqrt(m2 * m2 + 1.0) - m2)
    return 1.0 - m2 if m < 1 else float("nan")


def two_delta_broken_fixed_points(alpha: float, *, n_grid: int = 20001) -> np.ndarray:
    """Roots of the paper's 1-D equation (theta^2 + 1) x + 2 theta tanh(theta x / (theta^2 - 1)) = 0.

    theta = alpha_t for deltas at +-1 under a VP schedule (the SDE drift
    x + 2 s_t(x) = 0 multiplied by -sigma^2). Returns the sorted roots.
    """
    from scipy.optimize import brentq

    th = float(alpha)
    if not 0 < th < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")

    def h(x):
        return (th * th + 1.0) * x + 2.0 * th * np.tanh(th * x / (th * th - 1.0))

    bound = 2.0 * th / (th * th + 1.0) + 1e-9  # |x| <= 2 theta / (theta^2 + 1) since |tanh| <= 1
    grid = np.linspace(-bound, bound, n_grid)
    hv = h(grid)
    roots = [0.0]
    for i in np.nonzero(np.sign(hv[:-1]) * np.sign(hv[1:]) < 0)[0]:
        r = brentq(h, grid[i], grid[i + 1], xtol=1e-15)
        if abs(r) > 1e-9:
            roots.append(r)
    return np.unique(np.round(roots, 13))


@dataclass(frozen=True, repr=False)
class CloningResult(TidyResult):
    """phi(t_b) from :func:`cloning_agreement`: agreement probability with its standard error.

    Attributes
    ----------
    branch_times : (B,) branching times t_b, increasing
    phi : (B,) probability that the two clones end in the same class
    phi_stderr : (B,) its binomial standard error (``se`` is the old name)
    n_pairs : int
    """

    branch_times: np.ndarray
    phi: np.ndarray
    phi_stderr: np.ndarray
    n_pairs: int

    @property
    def se(self) -> np.ndarray:
        """Deprecated name of :attr:`phi_stderr`."""
        import warnings

        warnings.warn("CloningResult.se is renamed phi_stderr", DeprecationWarning, stacklevel=2)
        return self.phi_stderr

    def to_rows(self) -> list[dict]:
        """One dict per branching time: ``t``, ``phi``, ``phi_stderr``, ``n_pairs``."""
        return [
            {"t": float(t), "phi": float(p), "phi_stderr": float(s), "n_pairs": int(self.n_pairs)}
            for t, p, s in zip(self.branch_times, self.phi, self.phi_stderr)
        ]

    def plot(self, ax=None, *, label: str = "cloning agreement"):
        """phi(t_b) with 1 s.e. bars against the branching time (legend ``label``); returns the Axes."""
        ax = axes(ax)
        ax.errorbar(self.branch_times, self.phi, yerr=self.phi_stderr, marker="o", ms=3, label=label)
        ax.set_xlabel("branching time t_b")
        ax.set_ylabel("phi(t_b) = P(same class)")
        return ax


@_checks.keyword_rng(3)
def cloning_agreement(
    model,
    branch_times,
    n_pairs: int,
    *,
    rng=None,
    n_steps: int = 400,
    t_start: float | None = None,
    t_end: float | None = None,
    progress: bool = False,
) -> CloningResult:
    """Speciation measured by cloning (Biroli, Bonnaire, de Bortoli & Mezard 2024).

    Runs the reverse SDE (Euler-Maruyama, uniform grid of ``n_steps`` from
    ``t_start`` to ``t_end``, the branch times inserted into it) with the
    model's score; at each branch time t_b every state is copied, the two
    copies continue with independent noise, and phi(t_b) is the fraction of
    pairs whose end points have the same class (argmax of the exact class
    posterior at ``t_end``). phi -> 1 for t_b -> 0 and -> sum_c p_c^2 for
    large t_b; the crossover is the speciation. For an exact model
    phi(t_b) = E[sum_c p_{t_b}(c | x)^2] (:func:`exact_cloning_agreement`).

    Streams: the main chain is advanced from one branch time to the next and only its current
    state is kept, so memory is O(n_pairs d) whatever the number of steps (it used to store the
    whole trajectory, steps x pairs x d: 6.2 GB at d = 256, 3,000 pairs, 1,000 steps).
    """
    from ..samplers import EulerMaruyama

    sch = model.schedule
    n_pairs = _checks.check_positive_int(n_pairs, "n_pairs")
    rng = _checks.check_rng(rng)
    t0 = sch.default_t_start if t_start is None else _checks.check_time(t_start, sch, "t_start")
    t1 = float(sch.t_of_snr(1e4)) if t_end is None else _checks.check_time(t_end, sch, "t_end", allow_zero=False)
    tb = np.sort(_checks.check_times(branch_times, sch, name="branch_times"))[::-1]
    if tb[0] >= t0 or tb[-1] <= t1:
        raise ValueError(f"branch_times must lie strictly between t_end={t1} and t_start={t0}")
    grid = np.unique(np.concatenate([np.linspace(t0, t1, n_steps + 1), tb]))[::-1]
    idx = {float(t): int(np.nonzero(grid == t)[0][0]) for t in tb}
    phi, se = np.empty(tb.size), np.empty(tb.size)
    it = _progress.iterate(list(enumerate(tb)), progress, "cloning")
    x_b, cur = None, 0
    for j, t in it:
        i = idx[float(t)]
        seg = grid[cur : i + 1]  # the main chain from its current time to this branch time
        if x_b is None:
            x_b = EulerMaruyama(seg.size - 1, times=seg).sample(model, n=n_pairs, rng=rng).x
        elif seg.size > 1:
            x_b = EulerMaruyama(seg.size - 1, times=seg).sample(model, x_b, rng=rng).x
        cur = i
        sub = grid[i:]
        ends = [EulerMaruyama(sub.size - 1, times=sub).sample(model, x_b, rng=rng).x for _ in range(2)]
        c1, c2 = (np.argmax(model.class_posterior(e, t1), axis=1) for e in ends)
        same = (c1 == c2).astype(np.float64)
        phi[j] = same.mean()
        se[j] = same.std(ddof=1) / np.sqrt(n_pairs) if n_pairs > 1 else np.nan
    order = np.argsort(tb)
    return CloningResult(tb[order], phi[order], se[order], n_pairs)


@dataclass(frozen=True, repr=False)
class ExactCloning(UnpacksAs, CloningResult):
    """Output of :func:`exact_cloning_agreement`: a :class:`CloningResult` (``n_pairs`` is the
    number of exact draws per time, ``branch_times`` in the order given) that also unpacks as the
    former tuple ``(phi, phi_stderr)``."""

    _unpack = ("phi", "phi_stderr")


@_checks.keyword_rng(3)
def exact_cloning_agreement(model, branch_times, n: int, *, rng=None, progress: bool = False) -> ExactCloning:
    r"""The exact cloning agreement phi(t) = E_{x ~ p_t}[\sum_c p_t(c | x)^2] by Monte Carlo.

    Biroli, Bonnaire, de Bortoli & Mezard 2024: two clones branched at t end in the same class with
    probability sum_c p_t(c | x)^2 given x_t = x, for the exact reverse process. ``n`` exact draws
    x ~ p_t (``model.sample``) per time, the standard error from their spread. ``rng``: the
    package's policy (None fresh entropy, an int a seed); ``progress`` a bar over the times.
    Returns an :class:`ExactCloning`.
    """
    require(model, Samplable, purpose="exact_cloning_agreement draws x ~ p_t")
    n = _checks.check_positive_int(n, "n")
    rng = _checks.check_rng(rng)
    tb = _checks.check_times(branch_times, model.schedule, name="branch_times")
    out, err = np.empty(tb.size), np.empty(tb.size)
    for j, t in _progress.iterate(list(enumerate(tb)), progress, "cloning agreement"):
        x = model.sample(n, float(t), rng=rng).x
        q = np.sum(model.class_posterior(x, float(t)) ** 2, axis=1)
        out[j] = q.mean()
        err[j] = q.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return ExactCloning(tb, out, err, n)
