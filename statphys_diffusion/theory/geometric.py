r"""Geometric memorisation: the denoiser's Jacobian on tangent and normal directions (result 4).

Achilli, Ventura, Silvestri, Pham, Raya, Krotov, Lucibello & Ambrogioni, "Losing
dimensions: geometric memorization in generative diffusion" (arXiv 2410.08727)
read the latent dimension of a model off the spectrum of its denoiser's
Jacobian at small t. By Tweedie's formula that Jacobian is a posterior covariance,

    J_t(x) = d D_t / d x = (alpha_t / sigma_t^2) Cov[x_0 | x_t = x] = (I + sigma_t^2 H_t(x)) / alpha_t,

with H_t the Hessian of log p_t. For Gaussian data on a linear manifold with
tangent variances lambda_k (exact model) u_k^T J u_k = alpha lambda_k /
(alpha^2 lambda_k + sigma^2) and J vanishes on normal directions; the exact
empirical model of N points has the posterior covariance of its weights r_i(x)
instead, sum_i r_i (y_i - D)(y_i - D)^T, which loses tangent directions once
few points carry the weight. :func:`tangent_jacobian` measures the projections
for any denoiser (exact Hessian-vector products when the model has ``hvp``,
central differences of ``denoise`` otherwise); ``ratio`` against the exact
manifold model says which directions a model retains.

Predicted (:func:`geometric_memorization`): annealed random-energy computation
for Gaussian latents. Tangent coordinates z ~ N(0, diag(lambda)) (m of them),
N training points z_i, a fresh query x = alpha z* + sigma eps (its normal part
is the same for every training point and drops out). The weights are
w_i propto exp(-E_i), E_i = sum_k (x_k - alpha z_ik)^2 / (2 sigma^2): a
random-energy model with i.i.d. energies. Write a_k = snr_t lambda_k and let
p_theta be the prior tilted by exp(-theta E) (per direction Gaussian with
variance lambda_k / (1 + theta a_k)). Its relative entropy to the prior,
averaged over queries, is

    K(theta) = sum_k 1/2 [ log(1 + theta a_k) - theta a_k / (1 + theta a_k)
                           + theta^2 a_k (1 + a_k) / (1 + theta a_k)^2 ],

with K(1) = 1/2 sum_k log(1 + a_k), the mutual information I(z; x_t) (so
theta = 1 reproduces the collapse criterion of :mod:`.collapse`). If
log N >= K(1) the posterior is sampled by many points (theta = 1). Otherwise
the model freezes: the points that carry the weight are the N e^{-K(theta)} = O(1)
points of the theta-tilted region, log N = K(theta*), theta* < 1; in the REM
the Gibbs weights among them are Poisson-Dirichlet with E[1 - sum_i w_i^2] = theta*,
and, because the density of states at the edge is exactly exponential, the
positions of those points are independent of their weights and distributed as
p_theta*. Hence E[Cov_w(z_k)] = theta* lambda_k / (1 + theta* a_k) and the
retained fraction of direction k (the measured Jacobian projection over the
exact manifold's, averaged over queries) is

    rho_k = theta* (1 + a_k) / (1 + theta* a_k).

At t -> 0 (theta* a_k -> c lambda_k) this is c lambda_k / (1 + c lambda_k),
with c solving the t = 0 limit of log N = K: a direction survives when its
variance exceeds 1/c, the squared nearest-neighbour scale of the training set.
rho_k is increasing in lambda_k for every N and t: with Gaussian latents the
*lower*-variance directions are lost first. What enters is the local variance
along a direction; a direction whose large global variance comes from
well-separated modes (a clustered latent) has a small local variance and is
lost before smoother directions of lower global variance, which is the
condition under which higher-variance directions go first (shown in
validation/memorization.py). Direction k is lost (rho_k < level) when
log N < K(theta_k), theta_k = level / (1 + a_k (1 - level)): closed forms for
the critical dataset size at a given t (:func:`direction_critical_n`) and, by
bracketing in snr, for the critical time at a given N
(:func:`direction_critical_time`). The annealed average is exact as m -> infinity
with log N / m fixed; for m of tens it is 10-30 % optimistic (see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from .. import _checks
from .._results import TidyResult, axes, legend
from ..citations import references
from ..protocols import CurvatureModel, DenoiseFunction, Denoiser, require, satisfies
from ..schedules import OrnsteinUhlenbeck, Schedule

__all__ = [
    "TangentJacobian",
    "tangent_jacobian",
    "GeometricMemorization",
    "geometric_memorization",
    "direction_critical_n",
    "direction_critical_time",
]


@dataclass(frozen=True, repr=False)
class TangentJacobian(TidyResult):
    """Jacobian of a denoiser projected on a tangent basis, per query point.

    Attributes
    ----------
    t : float
    tangent : (M, m) u_k^T J u_k at each query
    normal : (M,) mean of v^T J v over unit normal directions (Hutchinson estimate)
    """

    t: float
    tangent: np.ndarray
    normal: np.ndarray

    @property
    def mean_tangent(self) -> np.ndarray:
        return self.tangent.mean(axis=0)

    def ratio(self, reference: np.ndarray) -> np.ndarray:
        """Mean tangent projections divided by ``reference`` (m,), e.g. the exact manifold's eigenvalues."""
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != (self.tangent.shape[1],):
            raise ValueError(f"reference must have shape ({self.tangent.shape[1]},), got {ref.shape}")
        return self.mean_tangent / ref

    def retained_count(self, reference: np.ndarray, level: float = 0.5) -> int:
        """Tangent directions whose mean projection is at least ``level`` times the reference."""
        return int(np.sum(self.ratio(reference) >= level))

    def retained(self, reference: np.ndarray, level: float = 0.5) -> int:
        """Deprecated name of :meth:`retained_count` (``retained`` is an array on the other results)."""
        import warnings

        warnings.warn(
            "TangentJacobian.retained(reference) is renamed retained_count(reference)", DeprecationWarning, stacklevel=2
        )
        return self.retained_count(reference, level)

    def to_rows(self) -> list[dict]:
        """One dict per (query point, tangent direction): ``t``, ``point``, ``direction``, ``tangent``
        (u_k^T J u_k) and ``normal`` (the point's mean normal projection)."""
        m, k = self.tangent.shape
        return [
            {
                "t": float(self.t),
                "point": i,
                "direction": j,
                "tangent": float(self.tangent[i, j]),
                "normal": float(self.normal[i]),
            }
            for i in range(m)
            for j in range(k)
        ]

    def plot(self, ax=None):
        """u_k^T J u_k per tangent direction k (mean and spread over queries) beside the normal mean; returns
        the Axes. 1 means the direction is kept, 0 that it collapsed."""
        ax = axes(ax)
        m = self.tangent.shape[1]
        mean = self.tangent.mean(axis=0)
        spread = self.tangent.std(axis=0)
        ax.errorbar(np.arange(m), mean, yerr=spread, fmt="o", ms=4, label="tangent u_k^T J u_k")
        ax.axhline(float(np.mean(self.normal)), color="C1", ls="--", label="normal (mean)")
        ax.set_xlabel("tangent direction k")
        ax.set_ylabel(f"Jacobian of D at t = {self.t:.3g}")
        return ax


def _jvp(model, x: np.ndarray, t: float, v: np.ndarray) -> np.ndarray:
    """J_t(x) v for rows of x and v."""
    if satisfies(model, CurvatureModel):
        sch = cast(CurvatureModel, model).schedule
        a, s2 = float(sch.alpha(t)), float(sch.sigma2(t))
        return (v + s2 * model.hvp(x, t, v)) / a
    h = 1e-4 * (1.0 + np.linalg.norm(x, axis=1, keepdims=True))
    return (np.asarray(model.denoise(x + h * v, t)) - np.asarray(model.denoise(x - h * v, t))) / (2 * h)


@references("achilli2024")
def tangent_jacobian(
    model: DenoiseFunction, x, t: float, basis, *, n_normal_probes: int = 8, rng: np.random.Generator | None = None
) -> TangentJacobian:
    """u_k^T J_t(x) u_k for each tangent direction u_k (columns of ``basis``) at each point x.

    Parameters
    ----------
    model : object with ``denoise(x, t)`` (and optionally ``hvp`` and ``schedule``)
    x : (M, d) noisy query points x_t
    t : float
        (The old order ``tangent_jacobian(model, t, x, basis)`` still works, with a DeprecationWarning.)
    basis : (d, m) orthonormal tangent basis
    n_normal_probes : int
        Random unit vectors in the normal space for the mean normal projection (0 skips it).
    rng : numpy Generator, optional

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> basis, lam = np.eye(5)[:, :2], np.array([1.0, 0.25])
    >>> lm = sd.LinearManifold(basis, lam)
    >>> t = 0.3
    >>> a2, s2 = float(lm.schedule.alpha(t)) ** 2, float(lm.schedule.sigma2(t))
    >>> tj = sd.tangent_jacobian(lm, np.zeros((1, 5)), t, basis, n_normal_probes=0)
    >>> # the Gaussian's denoiser keeps alpha lam / (alpha^2 lam + sigma^2) of a tangent displacement
    >>> bool(np.allclose(tj.tangent[0], np.sqrt(a2) * lam / (a2 * lam + s2)))
    True
    """
    x, t = _checks.point_then_time(x, t, "tangent_jacobian")
    require(model, DenoiseFunction, purpose="the tangent Jacobian differentiates D_t(x)")
    if satisfies(model, Denoiser):  # a schedule, where the model has one, validates t
        t = float(_checks.check_time(t, cast(Denoiser, model).schedule, "t", allow_zero=False))
    else:
        t = _checks.check_real(t, "t", lo=0.0, lo_open=True)
    u = _checks.as_float_array(basis, "basis", dtype=np.float64, ndim=2)
    d, m = u.shape
    if m > d or np.abs(u.T @ u - np.eye(m)).max() > 1e-8:
        raise ValueError("basis must have orthonormal columns (U^T U = I), shape (d, m) with m <= d")
    xq = _checks.as_points(x, d, "x").astype(np.float64, copy=False)
    rng = _checks.check_rng(rng)
    if isinstance(n_normal_probes, bool) or int(n_normal_probes) != n_normal_probes or n_normal_probes < 0:
        raise ValueError(f"n_normal_probes must be a non-negative integer, got {n_normal_probes!r}")
    tan = np.empty((xq.shape[0], m))
    for k in range(m):
        v = np.broadcast_to(u[:, k], xq.shape).copy()
        tan[:, k] = np.einsum("ij,ij->i", _jvp(model, xq, t, v), v)
    normal = np.full(xq.shape[0], np.nan)
    if n_normal_probes > 0 and m < d:
        acc = np.zeros(xq.shape[0])
        for _ in range(int(n_normal_probes)):
            v = rng.standard_normal(xq.shape)
            v -= (v @ u) @ u.T
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            acc += np.einsum("ij,ij->i", _jvp(model, xq, t, v), v)
        normal = acc / n_normal_probes
    return TangentJacobian(t=t, tangent=tan, normal=normal)


# ------------------------------------------------------------ annealed prediction
def _variances(variances) -> np.ndarray:
    lam = np.atleast_1d(_checks.as_float_array(variances, "variances", dtype=np.float64))
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError("variances must be a non-empty 1-D array (one tangent variance per direction)")
    if np.any(lam <= 0):
        raise ValueError("variances must be strictly positive (a direction without variance is not a direction)")
    return lam


def _n_points(n_points) -> float:
    if isinstance(n_points, bool):
        raise ValueError("n_points must be a number >= 2")
    n = float(n_points)
    if not np.isfinite(n) or n < 2:
        raise ValueError(f"n_points must be finite and at least 2 (one point has no spread), got {n_points!r}")
    return n


def _kl(theta: float, a: np.ndarray) -> float:
    """K(theta) for finite a (module docstring); theta may be 0."""
    ta = theta * a
    return float(0.5 * np.sum(np.log1p(ta) - ta / (1.0 + ta) + theta * ta * (1.0 + a) / (1.0 + ta) ** 2))


def _kl0(c: float, lam: np.ndarray) -> float:
    """t -> 0 limit of K with theta a_k -> c lambda_k."""
    u = c * lam
    return float(0.5 * np.sum(np.log1p(u) - u / (1.0 + u) + (u / (1.0 + u)) ** 2))


def _solve_increasing(f, target: float, lo: float, hi: float) -> float:
    """Root of the increasing f(x) = target for x in (lo, hi], bracketing in log x."""
    from scipy.optimize import brentq

    llo, lhi = np.log(lo), np.log(hi)
    while f(np.exp(lhi)) < target:
        lhi += 10.0
    while f(np.exp(llo)) > target:
        llo -= 10.0
    return float(np.exp(brentq(lambda v: f(np.exp(v)) - target, llo, lhi, xtol=1e-13, rtol=1e-13)))


def _retained(log_n: float, lam: np.ndarray, snr: float) -> tuple[float, np.ndarray]:
    """(theta*, rho) at one snr; snr = inf is the t -> 0 limit (theta* reported as 0)."""
    if not np.isfinite(snr):
        c = _solve_increasing(lambda c: _kl0(c, lam), log_n, 1e-6 / lam.max(), 1e6 / lam.min())
        return 0.0, c * lam / (1.0 + c * lam)
    a = snr * lam
    if _kl(1.0, a) <= log_n:
        return 1.0, np.ones_like(lam)
    theta = _solve_increasing(lambda th: _kl(th, a), log_n, 1e-300, 1.0)
    return theta, theta * (1.0 + a) / (1.0 + theta * a)


def _schedule(schedule) -> Schedule:
    schedule = OrnsteinUhlenbeck() if schedule is None else schedule
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    return schedule


def _level(level) -> float:
    lv = float(level)
    if not 0.0 < lv < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    return lv


@dataclass(frozen=True, repr=False)
class GeometricMemorization(TidyResult):
    """Predicted per-direction retention of the empirical model of N points on a linear manifold.

    Attributes
    ----------
    times : (T,) times (t = schedule.t_min is the t -> 0 limit)
    variances : (m,) tangent variances lambda_k
    n_points : float
    theta : (T,) freezing parameter theta* (1: not frozen; 0 reported at t -> 0)
    retained : (T, m) rho_k, the predicted E[u_k^T J u_k] / exact
    """

    times: np.ndarray
    variances: np.ndarray
    n_points: float
    theta: np.ndarray
    retained: np.ndarray

    @property
    def effective_dimension(self) -> np.ndarray:
        """(T,) sum_k rho_k: the soft count of retained tangent dimensions."""
        return self.retained.sum(axis=1)

    def retained_dimensions(self, level: float = 0.5) -> np.ndarray:
        """(T,) number of directions with rho_k >= level."""
        return (self.retained >= _level(level)).sum(axis=1)

    def to_rows(self) -> list[dict]:
        """One dict per (time, direction): ``t``, ``direction``, ``variance``, ``retained`` (rho_k), ``theta``."""
        return [
            {
                "t": float(t),
                "direction": k,
                "variance": float(self.variances[k]),
                "retained": float(self.retained[i, k]),
                "theta": float(self.theta[i]),
            }
            for i, t in enumerate(self.times)
            for k in range(self.variances.size)
        ]

    def plot(self, ax=None, *, colors=None):
        """rho_k against t, one curve per distinct variance lambda_k; returns the Axes.

        ``colors``: one matplotlib colour per distinct variance, largest first (default C0, C1, ...),
        to match measurements drawn on the same Axes.
        """
        ax = axes(ax)
        distinct = np.unique(self.variances)[::-1]
        if colors is not None and len(colors) != distinct.size:
            raise ValueError(f"colors must have one entry per distinct variance ({distinct.size}), got {len(colors)}")
        for j, lam in enumerate(distinct):
            k = int(np.flatnonzero(self.variances == lam)[0])
            col = f"C{j % 10}" if colors is None else colors[j]
            ax.plot(self.times, self.retained[:, k], color=col, label=f"lambda = {lam:.3g}")
        ax.axhline(0.5, color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("retained fraction rho_k")
        ax.set_title(f"annealed prediction, N = {self.n_points:.3g}", fontsize=9)
        legend(ax, fontsize=7)
        return ax


@references("achilli2024")
def geometric_memorization(
    n_points=None, variances=None, times=None, schedule: Schedule | None = None, *, data=None
) -> GeometricMemorization:
    """Predicted fraction of each tangent direction that the empirical model of N points retains.

    rho_k = theta* (1 + a_k) / (1 + theta* a_k), a_k = snr_t lambda_k, with
    log N = K(theta*) (module docstring; theta* = 1 when log N >= 1/2 sum_k
    log(1 + a_k)). Annealed random-energy computation for Gaussian latent
    coordinates on a linear manifold (the exact empirical denoiser's Jacobian,
    projected on u_k and averaged over fresh queries, over the exact model's);
    the setting of Achilli et al., "Losing dimensions" (arXiv 2410.08727).

    Parameters
    ----------
    n_points : number >= 2
        Training-set size N.
    variances : (m,) positive
        Tangent variances lambda_k (normal directions do not enter).
    times : scalar or (T,)
        Times in the schedule's range; ``schedule.t_min`` (t = 0 for OU/VP)
        gives the t -> 0 limit c lambda_k / (1 + c lambda_k).
    schedule : Schedule, default OrnsteinUhlenbeck()
    data : (N, d) array, optional
        Instead of ``n_points`` and ``variances``: N and the positive eigenvalues (above
        1e-12 of the largest) of the array's covariance (:func:`covariance_spectrum`).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> # log N far above 1/2 sum log(1 + snr lambda): no direction is lost (theta* = 1, rho = 1)
    >>> g = sd.geometric_memorization(1e12, [1.0, 0.1], [1.0])
    >>> bool(np.allclose(g.retained, 1.0))
    True
    """
    if data is not None:
        if n_points is not None or variances is not None:
            raise ValueError("give either data or (n_points, variances), not both")
        from ..spectrum import covariance_spectrum

        spec = covariance_spectrum(data)
        n_points, variances = spec.n, spec.eigenvalues[spec.eigenvalues > 1e-12 * spec.top]
    if n_points is None or variances is None or times is None:
        raise ValueError("give n_points, variances (or data) and times")
    log_n = np.log(_n_points(n_points))
    lam = _variances(variances)
    sch = _schedule(schedule)
    ts = _checks.check_times(times, sch)
    theta = np.empty(ts.size)
    rho = np.empty((ts.size, lam.size))
    for i, t in enumerate(ts):
        theta[i], rho[i] = _retained(log_n, lam, float(sch.snr(t)))
    return GeometricMemorization(times=ts, variances=lam, n_points=float(np.exp(log_n)), theta=theta, retained=rho)


@references("achilli2024")
def direction_critical_n(
    variances, t: float = 0.0, schedule: Schedule | None = None, *, level: float = 0.5
) -> np.ndarray:
    """(m,) training-set size below which direction k retains less than ``level`` at time t.

    rho_k < level exactly when log N < K(theta_k) with theta_k = level / (1 + a_k (1 - level))
    (K increases with theta), so N_k = exp(K(theta_k)); at t -> 0,
    c_k = level / ((1 - level) lambda_k) in the t = 0 limit of K.
    """
    lam = _variances(variances)
    sch = _schedule(schedule)
    lv = _level(level)
    snr = float(sch.snr(_checks.check_time(t, sch, "t")))
    if not np.isfinite(snr):
        return np.array([np.exp(_kl0(lv / ((1.0 - lv) * lk), lam)) for lk in lam])
    a = snr * lam
    return np.array([np.exp(_kl(lv / (1.0 + ak * (1.0 - lv)), a)) for ak in a])


@references("achilli2024")
def direction_critical_time(n_points, variances, schedule: Schedule | None = None, *, level: float = 0.5) -> np.ndarray:
    """(m,) time below which direction k retains less than ``level`` (0: never lost, t > t_min).

    Direction k is lost at snr s when g_k(s) = K(theta_k(s), s lambda) exceeds log N
    (:func:`direction_critical_n`); g_k increases with s, from 0 to its t -> 0 limit,
    so the crossing is unique when log N is below that limit, found by bracketing in log snr.
    """
    log_n = np.log(_n_points(n_points))
    lam = _variances(variances)
    sch = _schedule(schedule)
    lv = _level(level)
    out = np.zeros(lam.size)
    for k, lk in enumerate(lam):
        if _kl0(lv / ((1.0 - lv) * lk), lam) <= log_n:
            continue

        def g(s, lk=lk):
            a = s * lam
            return _kl(lv / (1.0 + s * lk * (1.0 - lv)), a)

        s_k = _solve_increasing(g, log_n, 1e-8 / lam.max(), 1e8 / lam.min())
        out[k] = float(sch.t_of_snr(s_k))
    return out
