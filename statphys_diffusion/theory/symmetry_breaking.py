r"""Spontaneous symmetry breaking: the critical times.

Raya & Ambrogioni, "Spontaneous symmetry breaking in generative diffusion
models" (NeurIPS 2023); speciation time from Biroli, Bonnaire, de Bortoli &
Mezard, "Dynamical regimes of diffusion models" (2024). The fixed points and their
stability are in :mod:`~statphys_diffusion.theory.fixed_points`: the centre loses
stability when the top eigenvalue of the Hessian of log p_t reaches -a_t
(-1/2 for the reverse SDE, -1 for the probability-flow ODE, 0 for the potential).

Closed forms (two deltas at +-m in 1-D, any VP schedule, sigma^2 = 1 - alpha^2;
H_t(0) = alpha^2 m^2 / sigma^4 - 1 / sigma^2):

- potential: alpha^2 m^2 = sigma^2, i.e. alpha^2 = 1 / (1 + m^2) (OU: t = 1/2 log(1 + m^2)),
- SDE: alpha^4 + 2 m^2 alpha^2 - 1 = 0, i.e. alpha^2 = sqrt(m^4 + 1) - m^2 (m = 1: sqrt 2 - 1),
- ODE: alpha^2 = 1 - m^2 for m < 1; for m >= 1 the centre is never stable.

The speciation time t_S solves alpha_t^2 Lambda = sigma_t^2 for the top
eigenvalue Lambda of the data covariance (Biroli et al. 2024); for OU it is
1/2 log(1 + Lambda) ~ 1/2 log Lambda. Speciation measured by cloning is in
:mod:`~statphys_diffusion.theory.cloning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from .. import _checks, _progress
from .._results import TidyResult, axes, legend
from ..citations import references
from ..protocols import CurvatureModel, Denoiser, Moments, require, satisfies
from ..schedules import OrnsteinUhlenbeck, Schedule
from .fixed_points import _check_dynamics, _check_grid, central_fixed_point, stiffness, top_hessian_eigenpairs

__all__ = [
    "symmetry_breaking_time",
    "SymmetryBreaking",
    "speciation_time",
    "two_delta_critical_alpha2",
    "two_delta_broken_fixed_points",
]


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
        legend(ax, fontsize=7)
        return ax


def _warn_nan(note: str) -> None:
    import warnings

    warnings.warn(f"symmetry_breaking_time returns NaN: {note} (see the result's note)", RuntimeWarning, stacklevel=3)


@references("raya2023")
def symmetry_breaking_time(
    model: CurvatureModel,
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

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 1e-6)  # two (almost) deltas at +-1
    >>> sb = sd.symmetry_breaking_time(gm)
    >>> a2 = float(gm.schedule.alpha(sb.time)) ** 2
    >>> bool(np.isclose(a2, sd.two_delta_critical_alpha2(1.0), rtol=1e-5))  # the closed form below
    True
    """
    require(model, CurvatureModel, purpose="the centre's stability needs the Hessian of log p_t")
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
    h_max = (ls_hi - ls_lo) / (_check_grid(n_grid) - 1)
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


@references("biroli2024")
def speciation_time(
    model: Denoiser | None = None, schedule=None, *, top_eigenvalue: float | None = None, data=None, form: str = "exact"
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

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-2.0], [2.0]], 0.1, labels=[0, 1])
    >>> round(sd.speciation_time(gm), 4)  # OU time where the two classes start to separate
    0.8146
    """
    _checks.check_choice(form, ("exact", "paper"), "form")
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
        top_eigenvalue = float(np.linalg.eigvalsh(cast(Moments, model).covariance())[-1])
    if isinstance(top_eigenvalue, bool):
        raise ValueError("top_eigenvalue must be a positive number")
    lam = float(top_eigenvalue)
    if not (lam > 0 and np.isfinite(lam)):
        raise ValueError(f"top_eigenvalue must be positive and finite, got {lam}")
    if form == "paper" and not lam > 1:
        raise ValueError(f"form='paper' (t_S = 1/2 log Lambda) needs Lambda > 1, got {lam}")
    if schedule is None and model is not None:
        schedule = require(model, Denoiser, purpose="its schedule sets t_S").schedule
    sch = schedule if schedule is not None else OrnsteinUhlenbeck()
    if not isinstance(sch, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {type(sch).__name__}")
    return float(sch.t_of_snr(1.0 / lam if form == "exact" else 1.0 / (lam - 1.0)))


def two_delta_critical_alpha2(m: float, dynamics: str = "sde") -> float:
    """Closed-form alpha^2 at the critical time for deltas at +-m (any VP schedule); NaN if none.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> round(sd.two_delta_critical_alpha2(1.0), 12)  # m = 1, reverse SDE: alpha^2 = sqrt(2) - 1
    0.414213562373
    """
    _check_dynamics(dynamics)
    m = _checks.check_real(m, "m")
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

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> theta = 0.3  # alpha_t for deltas at +-1: late enough that the symmetric point is not alone
    >>> roots = sd.two_delta_broken_fixed_points(theta)
    >>> f = (theta**2 + 1) * roots + 2 * theta * np.tanh(theta * roots / (theta**2 - 1))
    >>> bool(np.allclose(f, 0.0, atol=1e-9) and np.allclose(roots, -roots[::-1]))  # roots, and symmetric
    True
    """
    from scipy.optimize import brentq

    th = float(alpha)
    if not 0 < th < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")

    def h(x):
        return (th * th + 1.0) * x + 2.0 * th * np.tanh(th * x / (th * th - 1.0))

    bound = 2.0 * th / (th * th + 1.0) + 1e-9  # |x| <= 2 theta / (theta^2 + 1) since |tanh| <= 1
    grid = np.linspace(-bound, bound, _check_grid(n_grid))
    hv = h(grid)
    roots = [0.0]
    for i in np.nonzero(np.sign(hv[:-1]) * np.sign(hv[1:]) < 0)[0]:
        r = brentq(h, grid[i], grid[i + 1], xtol=1e-15)
        if abs(r) > 1e-9:
            roots.append(r)
    return np.unique(np.round(roots, 13))
