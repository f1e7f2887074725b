r"""Gaussian linear theory: the closed-form probability flow of a Gaussian, and how much of a score it explains.

Wang & Vastola, "The hidden linear structure in score-based models and its application" (arXiv
2311.10892) and "The unreasonable effectiveness of Gaussian score approximation for diffusion models
and its applications" (arXiv 2412.09726). For Gaussian data N(mu, Sigma), Sigma = U diag(lambda) U^T,
the noisy marginal is p_t = N(alpha_t mu, S_t), S_t = alpha_t^2 Sigma + sigma_t^2 I, its score is linear,
s_t(x) = -S_t^{-1} (x - alpha_t mu), and the probability-flow ODE dx/dt = f x - g^2 s_t(x) / 2 (f = d log
alpha / dt, g^2 = d sigma^2 / dt - 2 f sigma^2) decouples into the eigenmodes: y = U^T (x - alpha_t mu)
obeys dy_k / dt = (f + g^2 / (2 (alpha_t^2 lambda_k + sigma_t^2))) y_k, whose solution is

    y_k(t') = sqrt( (alpha_t'^2 lambda_k + sigma_t'^2) / (alpha_t^2 lambda_k + sigma_t^2) ) y_k(t),

for any schedule (differentiate log sqrt(alpha^2 lambda + sigma^2) to check). :meth:`GaussianFlow.transport`
is that map. Wang & Vastola find that a trained network's score is close to the Gaussian score of
its training data at high noise, so the network's own early trajectory is predicted by this map
from its initial noise, and the first 15-30% of the steps can be replaced by it ("analytic
teleportation", :meth:`GaussianFlow.teleport`; the package's Gaussian late initialisation,
:func:`~statphys_diffusion.gaussian_late_init`, draws from the same Gaussian at the late time
instead of mapping given noise). :func:`explained_variance` measures that closeness per noise level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks
from ._progress import iterate
from ._results import TidyResult, axes, band, estimates
from .citations import references
from .mixture import GaussianMixture
from .protocols import Moments, ScoreFunction, require
from .schedules import OrnsteinUhlenbeck, Schedule

__all__ = ["GaussianFlow", "explained_variance", "ExplainedVariance"]


@references("wang2023", "wang2024")
class GaussianFlow:
    r"""The Gaussian N(mu, Sigma) of a data set and its closed-form probability flow (module docstring).

    Parameters
    ----------
    mean : (d,) array
    covariance : (d, d) symmetric positive semi-definite array
    schedule : Schedule, default :class:`OrnsteinUhlenbeck`

    Build it from data with :meth:`fit`, or from any model with ``mean()`` and ``covariance()``
    with :meth:`of`.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> flow = sd.GaussianFlow.fit(np.random.default_rng(0).standard_normal((500, 3)) * [2.0, 1.0, 0.1])
    >>> x1 = flow.transport(np.zeros((1, 3)) + 1.0, 2.0, 0.5)   # the PF-ODE from t = 2 to t = 0.5
    >>> x1.shape
    (1, 3)
    """

    def __init__(self, mean, covariance, *, schedule: Schedule | None = None):
        mu = _checks.as_float_array(mean, "mean", dtype=np.float64)
        if mu.ndim != 1 or mu.size < 1:
            raise ValueError(f"mean must have shape (d,), got {mu.shape}")
        cov = _checks.as_float_array(covariance, "covariance", dtype=np.float64)
        d = mu.size
        if cov.shape != (d, d):
            raise ValueError(f"covariance must have shape ({d}, {d}), got {cov.shape}")
        if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(cov).max()))):
            raise ValueError("covariance must be symmetric")
        lam, u = np.linalg.eigh(0.5 * (cov + cov.T))
        tol = 1e-10 * max(1.0, float(lam.max()))
        if lam.min() < -tol:
            raise ValueError(f"covariance must be positive semi-definite, has eigenvalue {lam.min():.3g}")
        self._mean = mu
        # eigenvalues at rounding level (|lambda| <= 1e-10 of the largest) are exact zeros: directions
        # without variance, which the flow collapses at t = 0
        self._lam = np.where(lam > tol, lam, 0.0)
        self._u = u
        if schedule is None:
            schedule = OrnsteinUhlenbeck()
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        self.schedule = schedule

    @classmethod
    def fit(cls, data, *, schedule: Schedule | None = None) -> GaussianFlow:
        """The Gaussian of a data array (N, d): sample mean and covariance (divisor N, the maximum-likelihood
        fit, whose rank is at most N - 1: directions without variance collapse onto the data's span)."""
        x = _checks.as_image_rows(data, "data", dtype=np.float64)
        if x.shape[0] < 2:
            raise ValueError(f"data must have at least 2 rows, got {x.shape[0]}")
        mu = x.mean(axis=0)
        z = x - mu
        return cls(mu, z.T @ z / x.shape[0], schedule=schedule)

    @classmethod
    def of(cls, model, *, schedule: Schedule | None = None) -> GaussianFlow:
        """The Gaussian with the moments of ``model`` (anything with ``mean()`` and ``covariance()``: an exact
        mixture, an empirical model), on its schedule unless another is given."""
        require(model, Moments, purpose="the Gaussian takes the model's mean and covariance")
        sch = schedule if schedule is not None else getattr(model, "schedule", None)
        return cls(model.mean(), model.covariance(), schedule=sch)

    def __repr__(self) -> str:
        return f"GaussianFlow(d={self.dim}, rank={self.rank}, schedule={self.schedule!r})"

    @property
    def dim(self) -> int:
        return int(self._mean.size)

    @property
    def rank(self) -> int:
        """The number of eigenvalues above 1e-10 of the largest."""
        return int(np.count_nonzero(self._lam))

    @property
    def eigenvalues(self) -> np.ndarray:
        """lambda_k of the covariance, increasing, (d,)."""
        return self._lam.copy()

    def mean(self) -> np.ndarray:
        return self._mean.copy()

    def covariance(self) -> np.ndarray:
        return (self._u * self._lam) @ self._u.T

    def model(self, *, ridge: float = 0.0) -> GaussianMixture:
        """The exact score model of this Gaussian (a one-component :class:`GaussianMixture`; ``ridge`` * I is
        added to the covariance, needed only when it is singular and t = 0 is asked for)."""
        cov = self.covariance() + ridge * np.eye(self.dim)
        return GaussianMixture.full(self._mean[None], cov[None], schedule=self.schedule)

    def transport(self, x, t_from: float, t_to: float) -> np.ndarray:
        """The probability-flow ODE's solution from ``t_from`` to ``t_to`` (either direction), rows (M, d).

        x' = alpha' mu + U diag(sqrt((alpha'^2 lambda + sigma'^2) / (alpha^2 lambda + sigma^2))) U^T (x - alpha mu).
        """
        x = _checks.as_image_rows(x, "x", dtype=np.float64)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (M, {self.dim}), got {x.shape}")
        t0 = _checks.check_time(t_from, self.schedule, "t_from")
        t1 = _checks.check_time(t_to, self.schedule, "t_to")
        a0, s0 = float(self.schedule.alpha(t0)), float(self.schedule.sigma2(t0))
        a1, s1 = float(self.schedule.alpha(t1)), float(self.schedule.sigma2(t1))
        v0 = a0 * a0 * self._lam + s0
        if np.any(v0 <= 0):
            raise ValueError(
                f"t_from={t0} has sigma = 0 and the covariance is singular: directions without variance have no "
                "flow to invert there"
            )
        gain = np.sqrt((a1 * a1 * self._lam + s1) / v0)
        coef = (x - a0 * self._mean) @ self._u
        return a1 * self._mean + (coef * gain) @ self._u.T

    def teleport(self, noise, t_skip: float, *, t_start: float | None = None) -> np.ndarray:
        """Analytic teleportation (Wang & Vastola): the start of the sampler at ``t_skip`` that the Gaussian
        probability flow gives for the initial ``noise`` drawn at ``t_start`` (default: the schedule's
        ``default_t_start``, where the package's samplers start). Hand the result to a sampler with
        ``t_start=t_skip``."""
        t_start = self.schedule.default_t_start if t_start is None else t_start
        t_start = _checks.check_time(t_start, self.schedule, "t_start")
        t_skip = _checks.check_time(t_skip, self.schedule, "t_skip")
        if not t_skip < t_start:
            raise ValueError(f"t_skip must be earlier than t_start (reverse time runs down), got {t_skip} >= {t_start}")
        return self.transport(noise, t_start, t_skip)


@dataclass(frozen=True, repr=False)
class ExplainedVariance(TidyResult):
    """Output of :func:`explained_variance`: the fraction of a score's variance a reference score explains.

    Attributes
    ----------
    times : (T,)
    value, value_stderr : (T,) R^2(t) = 1 - E|s - s_ref|^2 / E|s|^2 and its standard error
    n : draws per time
    """

    times: np.ndarray
    value: np.ndarray
    value_stderr: np.ndarray
    n: int

    def to_rows(self) -> list[dict]:
        """One dict per time: ``t``, ``explained_variance``, ``explained_variance_stderr``, ``n``."""
        return [
            {"t": float(t), "explained_variance": float(v), "explained_variance_stderr": float(s), "n": self.n}
            for t, v, s in zip(self.times, self.value, self.value_stderr)
        ]

    def plot(self, ax=None, *, label: str = "explained variance"):
        """R^2(t) with a 1 s.e. band, log t axis; returns the Axes."""
        ax = axes(ax)
        band(ax, self.times, self.value, self.value_stderr, label=label, marker="o", ms=3)
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("1 - E|s - s_ref|^2 / E|s|^2")
        return ax


@references("wang2023", "wang2024")
def explained_variance(
    model: ScoreFunction,
    reference: ScoreFunction,
    data,
    times,
    *,
    n: int = 256,
    rng=None,
    progress: bool = False,
) -> ExplainedVariance:
    r"""The fraction of ``model``'s score variance that ``reference``'s score explains, per noise level.

    R^2(t) = 1 - E|s_t(x_t) - s^ref_t(x_t)|^2 / E|s_t(x_t)|^2,  x_t = alpha_t x_0 + sigma_t eps,

    x_0 drawn from ``data`` (with replacement when it has fewer than ``n`` rows, fresh noise for
    each draw). Wang & Vastola (2023, 2024) measure a trained network's score against the Gaussian
    score of its training data this way (``reference = GaussianFlow.fit(train).model()``), and report
    R^2 above 0.99 at high noise on CIFAR-10. Since E s_t(x_t) = 0 under p_t, E|s|^2 is the score's
    total variance. The standard error is the delta method's for the ratio of two means.

    Parameters
    ----------
    model, reference : score models on the same schedule (``schedule``, ``score(x, t)``)
    data : (N, d) rows or images
    times : (T,) times with sigma_t > 0
    n : draws per time
    rng : None, int or numpy Generator
    progress : bool

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.1)
    >>> data = gm.sample(50, rng=0).x0
    >>> float(sd.explained_variance(gm, gm, data, [0.5], n=64, rng=0).value[0])  # a score explains itself
    1.0
    >>> gauss = sd.GaussianMixture.fit(data)  # one Gaussian with the data's mean and covariance
    >>> bool(sd.explained_variance(gm, gauss, data, [3.0], n=256, rng=0).value[0] > 0.95)  # at high noise
    True
    """
    require(model, ScoreFunction, purpose="explained_variance compares scores")
    require(reference, ScoreFunction, name="reference", purpose="explained_variance compares scores")
    x0_all = _checks.as_image_rows(data, "data", dtype=np.float64)
    if x0_all.shape[0] < 1:
        raise ValueError("data must hold at least one row")
    sch = model.schedule
    ts = _checks.check_times(times, sch, allow_zero=False)
    n = _checks.check_positive_int(n, "n")
    if n < 2:
        raise ValueError("n must be at least 2 (a standard error)")
    rng = _checks.check_rng(rng)
    for t in ts:
        if abs(float(reference.schedule.sigma(t)) - float(sch.sigma(t))) > 1e-9 * max(1.0, float(sch.sigma(t))):
            raise ValueError("reference must use the model's schedule")
    value, stderr = np.empty(ts.size), np.empty(ts.size)
    for i in iterate(range(ts.size), progress, "explained variance"):
        t = float(ts[i])
        a, s = float(sch.alpha(t)), float(sch.sigma(t))
        x0 = x0_all[rng.choice(x0_all.shape[0], n, replace=x0_all.shape[0] < n)]
        xt = a * x0 + s * rng.standard_normal(x0.shape)
        sm = np.asarray(model.score(xt, t), dtype=np.float64)
        sr = np.asarray(reference.score(xt, t), dtype=np.float64)
        r = np.einsum("ij,ij->i", sm - sr, sm - sr)
        v = np.einsum("ij,ij->i", sm, sm)
        ratio = r.mean() / v.mean()
        value[i] = 1.0 - ratio
        stderr[i] = float(np.std(r - ratio * v, ddof=1) / np.sqrt(n) / v.mean())
    return ExplainedVariance(times=ts, **estimates(value=(value, stderr)), n=n)
