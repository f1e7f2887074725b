r"""The central branch of fixed points by continuation, and the Gaussian instability time.

The central fixed point x*(t) of F(x) = a_t x + s_t(x) (see :mod:`.symmetry_breaking`) is
a branch of solutions parametrised by t. Solving Newton independently at each t can land on
different fixed points at neighbouring times (a centre at one t, a broken state at the next),
and a sign change of the margin lambda_max(H_t) + a_t between two such points says nothing
about either. :func:`central_branch` follows one branch from large t down, in substeps of
log-snr that are halved whenever Newton fails or the margin jumps, and reports along it:

- the margin m(t) = lambda_max(H_t(x*)) + a_t (negative: stable);
- the effective number of components carrying the posterior, n_eff = 1 / sum_i w_i(x*)^2
  (w the component posterior; for an empirical model, the number of training points);
- the distance |x*(t) - c(t)| to the large-t centre c(t) = alpha_t m / (1 - a_t sigma_t^2)
  (m the data mean), where the fixed point sits when p_t is close to N(alpha m, sigma^2 I),
  and the distance to the nearest scaled component mean alpha_t mu_i.

A symmetric model has a pitchfork: the margin crosses zero while x* stays at the centre.
An asymmetric one (any finite training set) has an imperfect bifurcation: the margin rises
towards zero, peaks below it, and the branch slides off the centre onto one component,
n_eff collapsing; or the branch ends in a fold. :class:`CentralBranch` flags it.

For data with covariance top eigenvalue Lambda, the Gaussian approximation N(m, Sigma) has
H_t = -(alpha_t^2 Sigma + sigma_t^2 I)^{-1} everywhere, so its centre loses stability when

    a_t (alpha_t^2 Lambda + sigma_t^2) = 1                       (gaussian_instability_time)

For the reverse SDE of a variance-preserving schedule (a_t = 1/2, sigma^2 = 1 - alpha^2) this
is alpha_t^2 = 1 / (Lambda - 1), on the OU schedule t = 1/2 log(Lambda - 1); compare t_S,
alpha_t^2 = 1 / (1 + Lambda) (exact) and 1 / Lambda (Biroli et al. 2024's large-Lambda form).
The probability-flow ODE (a_t = 1) has no such crossing on VP schedules: its centre is
unstable at every t when Lambda > 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from .. import _checks
from .._progress import iterate
from .._results import TidyResult
from ..citations import references
from ..protocols import CurvatureModel, ExactMixture, require, satisfies
from ..schedules import OrnsteinUhlenbeck, Schedule
from .fixed_points import (
    _check_dynamics,
    _large_t_centre,
    central_fixed_point,
    stiffness,
    top_hessian_eigenpairs,
)

__all__ = ["CentralBranch", "central_branch", "gaussian_instability_time"]

_N_EFF_COLLAPSED = 1.5  # one component carries most of the posterior (>= 0.8 of it for two)
_MARGIN_JUMP = 0.1  # a substep is refused when the margin moves by more than this x max(1, |m|)


@dataclass(frozen=True, repr=False)
class CentralBranch(TidyResult):
    """The central fixed point continued along decreasing t (:func:`central_branch`).

    Attributes
    ----------
    times : (T,) the requested times, decreasing
    margin : (T,) lambda_max(H_t(x*)) + a_t (negative: stable); NaN where the branch was lost
    n_eff : (T,) 1 / sum w^2 of the component posterior at x* (NaN without ``component_posterior``)
    distance_to_centre : (T,) |x*(t) - alpha_t m / (1 - a_t sigma_t^2)|
    distance_to_nearest : (T,) min_i |x*(t) - alpha_t mu_i| over component means (NaN without means)
    points : (T, d) the branch
    dynamics : str
    lost_at : float
        First requested time the branch could not be continued to (NaN if it reached all).
    """

    times: np.ndarray
    margin: np.ndarray
    n_eff: np.ndarray
    distance_to_centre: np.ndarray
    distance_to_nearest: np.ndarray
    points: np.ndarray
    dynamics: str
    lost_at: float

    @property
    def crossing_time(self) -> float:
        """Largest t at which the margin reaches 0 along the branch (linear in log t); NaN if never."""
        return first_crossing(self.times, self.margin)[1]

    @property
    def imperfect(self) -> bool:
        """True for an imperfect bifurcation: the margin peaks below 0 while n_eff collapses.

        Stated rule: the margin stays negative wherever the branch exists, its maximum is not at
        either end of the continued part, and n_eff at the last continued time is at most 1.5 (one
        component carries most of the posterior) and below its value at the first; or the branch
        ends in a fold (lost while the margin was still negative).
        """
        ok = np.isfinite(self.margin)
        if not ok.any() or np.nanmax(self.margin) >= 0:
            return False
        if np.isfinite(self.lost_at):
            return True
        m = self.margin[ok]
        ne = self.n_eff[ok]
        peak = int(np.argmax(m))
        interior = 0 < peak < m.size - 1
        collapsed = np.isfinite(ne[-1]) and ne[-1] <= _N_EFF_COLLAPSED and ne[-1] < ne[0]
        return bool(interior and collapsed)

    @property
    def peak_time(self) -> float:
        """Time of the largest margin along the continued branch."""
        if not np.isfinite(self.margin).any():
            return float("nan")
        return float(self.times[int(np.nanargmax(self.margin))])

    def to_rows(self) -> list[dict]:
        """One dict per time: t, margin, n_eff, distance_to_centre, distance_to_nearest."""
        return [
            {
                "t": float(t),
                "margin": float(m),
                "n_eff": float(n),
                "distance_to_centre": float(dc),
                "distance_to_nearest": float(dn),
            }
            for t, m, n, dc, dn in zip(
                self.times, self.margin, self.n_eff, self.distance_to_centre, self.distance_to_nearest
            )
        ]

    def plot(self, ax=None):
        """Margin (left axis, symlog) and n_eff (right axis, log) against t; returns the Axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.gca()
        ax.plot(self.times, self.margin, "k-o", ms=2.5, label="margin lambda_max + a_t")
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel("t")
        ax.set_ylabel("margin at the central branch (> 0: unstable)")
        if np.isfinite(self.n_eff).any():
            ax2 = ax.twinx()
            ax2.plot(self.times, self.n_eff, "C0--", lw=1, label="n_eff")
            ax2.set_yscale("log")
            ax2.set_ylabel("n_eff = 1 / sum w^2", color="C0")
        return ax


def first_crossing(times, margin) -> tuple[int | None, float]:
    """First loss of stability along decreasing ``times``: the index i with margin[i] < 0 <= margin[i + 1]
    (both finite) and the crossing time by linear interpolation of the margin in log t; (None, NaN) if none."""
    t, m = np.asarray(times, dtype=np.float64), np.asarray(margin, dtype=np.float64)
    ok = np.isfinite(m)
    idx = np.flatnonzero(ok[:-1] & ok[1:] & (m[:-1] < 0) & (m[1:] >= 0))
    if idx.size == 0:
        return None, float("nan")
    i = int(idx[0])
    f = m[i] / (m[i] - m[i + 1])
    u = np.log(t[i : i + 2])
    return i, float(np.exp(u[0] + f * (u[1] - u[0])))


def _nearest_mean_distance(means, alpha: float, x: np.ndarray) -> float:
    if means is None:
        return float("nan")
    mu = alpha * means
    d2 = np.einsum("ij,ij->i", mu, mu) - 2.0 * (mu @ x) + float(x @ x)
    return float(np.sqrt(max(float(d2.min()), 0.0)))


@references("raya2023")
def central_branch(
    model: CurvatureModel, times, dynamics: str = "sde", *, x0=None, max_halvings: int = 8, progress: bool = False
) -> CentralBranch:
    """Continue the central fixed point of ``model`` down ``times`` and measure it along the way.

    Parameters
    ----------
    model : exact score model with ``schedule``, ``dim``, ``score``, ``mean()`` and a Hessian
        (``hessian``/``hvp``/``hessian_operator``); ``component_posterior`` and ``means`` (mixtures,
        empirical models) add n_eff and the distance to the nearest component.
    times : (T,) forward times; sorted into decreasing order (continuation runs from large t down).
    dynamics : {"sde", "ode", "potential"}
    x0 : (d,) optional start at the largest time (default: the large-t centre, as
        :func:`~statphys_diffusion.theory.central_fixed_point`).
    max_halvings : int
        Between two requested times the step in log-snr is halved (up to this many times) while
        Newton fails or the margin moves by more than 0.1 max(1, |margin|); past that the branch is
        declared lost (a fold, or a jump to another branch) and the remaining entries are NaN.

    Returns
    -------
    CentralBranch
        ``margin``, ``n_eff``, ``distance_to_centre``, ``distance_to_nearest`` per time, the
        ``crossing_time`` and the ``imperfect`` flag (Raya & Ambrogioni 2023 discuss the pitchfork
        of symmetric data; a finite training set breaks the symmetry).
    """
    require(model, CurvatureModel, purpose="continuation of the central fixed point")
    _check_dynamics(dynamics)
    sch = model.schedule
    ts = np.unique(_checks.check_times(times, sch, scalar=False, allow_zero=False))[::-1]
    max_halvings = 0 if max_halvings == 0 else _checks.check_positive_int(max_halvings, "max_halvings")
    d = int(model.dim)
    exact = cast(ExactMixture, model) if satisfies(model, ExactMixture) else None
    means = None if exact is None else np.asarray(exact.means, dtype=np.float64).reshape(-1, d)

    def solve(t, start):
        x = central_fixed_point(model, t, dynamics, x0=start, max_iter=30)
        lam, _ = top_hessian_eigenpairs(model, x, t, 1)
        return x, float(lam[0]) + float(stiffness(sch, t, dynamics))

    T = ts.size
    margin = np.full(T, np.nan)
    n_eff = np.full(T, np.nan)
    dist_c = np.full(T, np.nan)
    dist_n = np.full(T, np.nan)
    points = np.full((T, d), np.nan)
    lost_at = float("nan")
    x, m = None, None
    for i in iterate(range(T), progress, "central branch"):
        t = float(ts[i])
        try:
            if x is None:
                x, m = solve(t, x0)
            else:
                x, m = _continue(solve, sch, float(ts[i - 1]), t, x, m, max_halvings)
        except ValueError:
            lost_at = t
            break
        a = float(stiffness(sch, t, dynamics))
        margin[i] = m
        points[i] = x
        dist_c[i] = float(np.linalg.norm(x - _large_t_centre(model, t, a)))
        dist_n[i] = _nearest_mean_distance(means, float(sch.alpha(t)), x)
        if exact is not None:
            w = np.asarray(exact.component_posterior(x[None], t), dtype=np.float64)[0]
            n_eff[i] = 1.0 / float(np.sum(w * w))
    return CentralBranch(ts, margin, n_eff, dist_c, dist_n, points, dynamics, lost_at)


def _continue(solve, sch, t_from, t_to, x, m, max_halvings):
    """From the branch point (x, m) at t_from to t_to in accepted log-snr substeps, or ValueError."""
    u, u_end = float(sch.log_snr(t_from)), float(sch.log_snr(t_to))
    h = u_end - u
    halvings = 0
    while u != u_end:
        u_new = u_end if abs(u_end - u) <= abs(h) else u + h
        t_new = t_to if u_new == u_end else float(sch.t_of_snr(np.exp(u_new)))
        try:
            x_new, m_new = solve(t_new, x)
            ok = abs(m_new - m) <= _MARGIN_JUMP * max(1.0, abs(m))
        except ValueError:
            ok = False
        if not ok:
            if halvings >= max_halvings:
                raise ValueError(f"central branch lost between t={t_from} and t={t_to}")
            h /= 2.0
            halvings += 1
            continue
        u, x, m = u_new, x_new, m_new
    return x, m


def gaussian_instability_time(
    schedule=None, *, top_eigenvalue: float | None = None, data=None, dynamics: str = "sde"
) -> float:
    r"""Time at which the centre of the data's Gaussian approximation loses stability.

    Solves a_t (alpha_t^2 Lambda + sigma_t^2) = 1 (module docstring) for the covariance's top
    eigenvalue Lambda (``top_eigenvalue``, or from ``data`` (N, d) by
    :func:`~statphys_diffusion.covariance_spectrum`) on ``schedule`` (default Ornstein-Uhlenbeck),
    by Brent's method in log-snr. For the VP reverse SDE this is alpha_t^2 = 1 / (Lambda - 1)
    (OU: t = 1/2 log(Lambda - 1)), which needs Lambda > 2 to lie inside (0, infinity); a
    Gaussian with Lambda <= 2 keeps a stable centre at every t.

    Raises ValueError when the centre never changes stability on the schedule's range (for
    example the probability-flow ODE or the potential on VP schedules).

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> round(sd.gaussian_instability_time(sd.OrnsteinUhlenbeck(), top_eigenvalue=4.0), 4)
    0.5493
    """
    from scipy.optimize import brentq

    _check_dynamics(dynamics)
    if (top_eigenvalue is None) == (data is None):
        raise ValueError("give exactly one of top_eigenvalue and data")
    if data is not None:
        from ..spectrum import covariance_spectrum

        top_eigenvalue = covariance_spectrum(data).top
    lam = _checks.check_real(top_eigenvalue, "top_eigenvalue")
    if not lam > 0:
        raise ValueError(f"top_eigenvalue must be positive, got {lam}")
    sch = schedule if schedule is not None else OrnsteinUhlenbeck()
    if not isinstance(sch, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {type(sch).__name__}")

    def g(u):
        t = float(sch.t_of_snr(np.exp(u)))
        al2, s2 = float(sch.alpha(t)) ** 2, float(sch.sigma2(t))
        return float(stiffness(sch, t, dynamics)) * (al2 * lam + s2) - 1.0

    lo = float(sch.log_snr(sch.default_t_start))
    hi = float(sch.log_snr(sch.t_min + 1e-9 * max(1.0, float(sch.default_t_start))))
    glo, ghi = g(lo), g(hi)
    if not (np.isfinite(glo) and np.isfinite(ghi)) or glo * ghi > 0:
        raise ValueError(
            f"the Gaussian centre does not change stability on this schedule ({dynamics}, Lambda={lam:g}): "
            f"a_t (alpha^2 Lambda + sigma^2) - 1 is {glo:.3g} at the largest and {ghi:.3g} at the smallest time"
        )
    return float(sch.t_of_snr(np.exp(brentq(g, lo, hi, xtol=1e-13, rtol=1e-14))))
