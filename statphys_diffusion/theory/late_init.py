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

__all__ = ["LateInitGaussian", "gaussian_late_init"]


@dataclass(frozen=True)
class LateInitGaussian:
    """N(mean, U diag(variances) U^T) at time ``t`` of ``schedule``; ``sample`` draws from it."""

    mean: np.ndarray
    variances: np.ndarray
    basis: np.ndarray
    t: float
    schedule: object

    @property
    def cov(self) -> np.ndarray:
        return (self.basis * self.variances) @ self.basis.T

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws, shape (n, d)."""
        n = _checks.check_positive_int(n, "n")
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy.random.Generator")
        z = rng.standard_normal((n, self.mean.size))
        return self.mean + (z * np.sqrt(self.variances)) @ self.basis.T


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
    """
    if schedule is None:
        schedule = getattr(source, "schedule", None)
        if schedule is None:
            raise ValueError("schedule is required when source is not a model")
    if hasattr(source, "mean") and hasattr(source, "covariance") and callable(source.covariance):
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
