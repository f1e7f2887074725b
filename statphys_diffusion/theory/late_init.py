r"""Gaussian late initialisation (GLI; Raya & Ambrogioni, NeurIPS 2023, sec. 6).

Before the symmetry-breaking time the reverse dynamics is linear around the
central fixed point, so x_t is, to that order, the Gaussian the forward process
makes of the data's first two moments:

    x_{t_late} ~ N(alpha m, alpha^2 C + sigma^2 I),    m = E[x_0], C = Cov[x_0].

A sampler started from it at t_late skips the linear phase, which few-step
samplers otherwise spend their steps on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from .._progress import iterate
from .._results import TidyResult, axes, band
from ..citations import references
from ..protocols import Moments, satisfies

__all__ = ["LateInitGaussian", "gaussian_late_init", "LateStartScan", "critical_start", "late_start_scan"]


@dataclass(frozen=True, repr=False)
class LateInitGaussian(TidyResult):
    """N(mean, U diag(variances) U^T) at time ``t`` of ``schedule``; ``sample`` draws from it."""

    mean: np.ndarray
    variances: np.ndarray
    basis: np.ndarray
    t: float
    schedule: object

    @property
    def cov(self) -> np.ndarray:
        return (self.basis * self.variances) @ self.basis.T

    def to_rows(self) -> list[dict]:
        """One dict per principal direction: ``t``, ``direction`` and its ``variance`` (columns of ``basis``)."""
        return [{"t": float(self.t), "direction": k, "variance": float(v)} for k, v in enumerate(self.variances)]

    @_checks.keyword_rng(2)
    def sample(self, n: int, *, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """n draws, shape (n, d)."""
        n = _checks.check_positive_int(n, "n")
        rng = _checks.check_rng(rng)
        z = rng.standard_normal((n, self.mean.size))
        return self.mean + (z * np.sqrt(self.variances)) @ self.basis.T


@references("raya2023")
def gaussian_late_init(source, t_late: float, schedule=None) -> LateInitGaussian:
    """The Gaussian N(alpha m, alpha^2 C + sigma^2 I) at ``t_late``.

    Parameters
    ----------
    source : model with ``mean()``/``covariance()``, a tuple ``(mean (d,), cov (d, d))``,
        or data points (N, d) whose sample mean and covariance are used.
    t_late : float
        Start time, strictly inside the schedule's range (t_late > t_min).
    schedule : Schedule, optional
        Default: ``source.schedule``.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> y = np.random.default_rng(0).standard_normal((200, 4))
    >>> g = sd.gaussian_late_init(y, 0.5, schedule=sd.OrnsteinUhlenbeck())  # N(alpha m, alpha^2 C + sigma^2 I)
    >>> g.sample(3, rng=0).shape  # starting points for a sampler at t_start = 0.5
    (3, 4)
    """
    if schedule is None:
        schedule = getattr(source, "schedule", None)
        if schedule is None:
            raise ValueError("schedule is required when source is not a model")
    if satisfies(source, Moments) and callable(source.covariance):
        m, c = np.asarray(source.mean(), dtype=np.float64), np.asarray(source.covariance(), dtype=np.float64)
    elif isinstance(source, tuple) and len(source) == 2:
        m = _checks.as_float_array(source[0], "mean", dtype=np.float64, ndim=1)
        c = _checks.as_float_array(source[1], "cov", dtype=np.float64, ndim=2)
    else:
        x = _checks.as_float_array(source, "source (points)", dtype=np.float64, ndim=2)
        if x.shape[0] < 2:
            raise ValueError("source (points) needs at least 2 points")
        m = x.mean(axis=0)
        xc = x - m
        c = xc.T @ xc / (x.shape[0] - 1)
    d = m.size
    if c.shape != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}), got {c.shape}")
    scale = max(float(np.abs(c).max()), 1e-300)
    if float(np.abs(c - c.T).max()) > 1e-10 * scale:
        raise ValueError("cov must be symmetric")
    t = _checks.check_time(t_late, schedule, "t_late", allow_zero=False)
    lam, u = np.linalg.eigh(0.5 * (c + c.T))
    if lam.min() < -1e-10 * scale:
        raise ValueError(f"cov must be positive semi-definite (smallest eigenvalue {lam.min():.3g})")
    a, s2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    var = a * a * np.clip(lam, 0.0, None) + s2
    return LateInitGaussian(mean=a * m, variances=var, basis=u, t=t, schedule=schedule)


CRITICAL_RULES = ("second_difference", "smoothed")


@dataclass(frozen=True, repr=False)
class LateStartScan(TidyResult):
    """A sample-quality metric against the start time of Gaussian late initialisation.

    Attributes
    ----------
    times : (T,) increasing start times
    value, value_stderr : (T,) the metric (lower is better) and its standard error over seeds
    critical_start : float, by ``rule`` (:func:`critical_start`)
    rule : str
    """

    times: np.ndarray
    value: np.ndarray
    value_stderr: np.ndarray
    critical_start: float
    rule: str

    def to_rows(self) -> list[dict]:
        return [
            {"t_start": float(t), "value": float(v), "value_stderr": float(s)}
            for t, v, s in zip(self.times, self.value, self.value_stderr)
        ]

    def plot(self, ax=None, *, label: str = "metric"):
        """The metric against the late start time with a 1 s.e. band and the critical start; returns the Axes."""
        ax = axes(ax)
        band(ax, self.times, self.value, self.value_stderr, label=label, marker="o", ms=3)
        if np.isfinite(self.critical_start):
            ax.axvline(self.critical_start, color="0.3", ls="--", lw=1, label=f"critical start ({self.rule})")
        ax.set_xlabel("start time t_start")
        ax.set_ylabel(label)
        return ax


def critical_start(times, values, *, rule: str = "second_difference", window: int = 3) -> float:
    r"""The empirical critical start time of Gaussian late initialisation from a quality scan.

    ``values[i]`` is a sample-quality metric (lower is better, e.g. FD_own or a sliced W1 to
    exact draws) of a sampler started from the Gaussian late initialisation at ``times[i]``.
    Starting late (small t, after the symmetry breaking) degrades quality; the critical start is
    the elbow of the curve. ``rule="second_difference"`` (Raya & Ambrogioni 2023): the grid time
    of the largest second difference of the metric in log t, i.e. where its slope changes most;
    ``rule="smoothed"``: the same after a centred moving average over ``window`` points, for noisy
    scans. Returns the elbow time (an interior grid time).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> times = np.array([50.0, 100.0, 200.0, 400.0, 800.0])
    >>> fd = np.array([9.0, 5.0, 1.0, 1.0, 1.0])  # quality lost below t = 200
    >>> float(sd.critical_start(times, fd))
    200.0
    """
    v = _checks.as_float_array(values, "values", dtype=np.float64, ndim=1)
    if np.ndim(times) != 1 or np.size(times) != v.size or v.size < 3:
        raise ValueError(f"times and values must have the same length >= 3, got {np.shape(times)} and {v.shape}")
    t = _checks.check_times(times, order="increasing", scalar=False, allow_zero=False)
    _checks.check_choice(rule, CRITICAL_RULES, "rule")
    if rule == "smoothed":
        window = _checks.check_positive_int(window, "window")
        if window % 2 == 0 or window > t.size:
            raise ValueError(f"window must be odd and at most {t.size}, got {window}")
        k = np.ones(window) / window
        pad = window // 2
        v = np.convolve(np.pad(v, pad, mode="edge"), k, mode="valid")
    u = np.log(t)
    slope = np.diff(v) / np.diff(u)
    curvature = np.diff(slope) / (0.5 * (u[2:] - u[:-2]))
    # flat where the Gaussian start is exact (large t), rising once it is not: the elbow is where
    # the slope turns most, the largest |second difference|
    return float(t[1 + int(np.argmax(np.abs(curvature)))])


@references("raya2023")
def late_start_scan(
    model,
    sampler,
    times,
    metric,
    *,
    n: int,
    source=None,
    n_seeds: int = 3,
    rule: str = "second_difference",
    rng=None,
    progress: bool = False,
) -> LateStartScan:
    """Scan a sampler started from Gaussian late initialisation over ``times`` (Raya & Ambrogioni 2023).

    For each start time and seed: ``n`` draws of :func:`gaussian_late_init` of ``source`` (default:
    the model) at that time, run by ``sampler`` (e.g. ``DDIM(10)``) from there to the end, and
    ``metric(samples) -> float`` (lower is better). Returns the mean and standard error over seeds
    and the :func:`critical_start` of the curve.
    """
    ts = _checks.check_times(times, model.schedule, order="increasing", min_size=3, scalar=False)
    if not callable(metric):
        raise ValueError("metric must be a callable samples -> float (lower is better)")
    n = _checks.check_positive_int(n, "n")
    n_seeds = _checks.check_positive_int(n_seeds, "n_seeds")
    rng = _checks.check_rng(rng)
    src = model if source is None else source
    vals = np.empty((ts.size, n_seeds))
    it = iterate([(i, j) for i in range(ts.size) for j in range(n_seeds)], progress, "late-start scan")
    for i, j in it:
        g = gaussian_late_init(src, float(ts[i]), schedule=model.schedule)
        x = sampler.sample(model, g.sample(n, rng=rng), t_start=float(ts[i]), rng=rng).x
        vals[i, j] = float(metric(x))
    se = vals.std(axis=1, ddof=1) / np.sqrt(n_seeds) if n_seeds > 1 else np.zeros(ts.size)
    return LateStartScan(
        times=ts,
        value=vals.mean(axis=1),
        value_stderr=se,
        critical_start=critical_start(ts, vals.mean(axis=1), rule=rule),
        rule=rule,
    )
