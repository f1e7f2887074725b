r"""Collapse of the empirical model onto training points: predicted and measured (result 2).

Predicted (annealed, random-energy argument; Biroli, Bonnaire, de Bortoli &
Mezard, "Dynamical regimes of diffusion models", 2024). The exact empirical
denoiser weighs training point i by r_i(x) proportional to
exp(-|x - alpha y_i|^2 / (2 sigma^2)). Take x = alpha y_1 + sigma eps noised
from training point y_1 (what the reverse dynamics of the empirical model
visit), with the other points y_j independent draws from data of covariance
Lambda (eigenvalues lambda_k) in d dimensions. The weight of y_1 is
exp(-|eps|^2 / 2) ~ exp(-d/2). The others sum, in the annealed approximation
sum_j -> N E_y, to

    N E_y exp(-|x - alpha y|^2 / (2 sigma^2))
        = N prod_k (1 + alpha^2 lambda_k / sigma^2)^(-1/2) exp(-sum_k x_k^2 / (2 (sigma^2 + alpha^2 lambda_k)))
        ~ N prod_k (1 + alpha^2 lambda_k / sigma^2)^(-1/2) exp(-d/2)

(Gaussian integral per eigendirection; x_k^2 ~ sigma^2 + alpha^2 lambda_k for
typical x). The two are equal, r_1 = 1/2, when

    log N = 1/2 sum_k log(1 + snr_t lambda_k),   snr_t = alpha_t^2 / sigma_t^2,

which defines the collapse time t_C: for t < t_C the posterior sits on the
training point the trajectory came from (memorisation). Isotropic data
(lambda_k = lambda): snr_C = (N^(2/d) - 1) / lambda. The right-hand side
increases with snr, so the root is unique; it is found by bracketing in log snr.

Measured: :func:`posterior_collapse` noises training points (or fresh data)
and reports the entropy H of the posterior over training points, its
participation ratio 1 / sum_i r_i^2 and the weight of the point of origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from .._progress import iterate
from .._results import TidyResult, axes, estimates
from ..citations import references
from ..protocols import ExactMixture, require
from ..schedules import OrnsteinUhlenbeck, Schedule
from .information import _posterior_entropy

__all__ = ["collapse_snr", "collapse_time", "CollapseCurve", "posterior_collapse", "ExcessEntropy", "excess_entropy"]


def _spectrum(eigenvalues) -> np.ndarray:
    lam = _checks.as_float_array(eigenvalues, "eigenvalues", dtype=np.float64)
    lam = np.atleast_1d(lam)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError("eigenvalues must be a non-empty 1-D array (the data covariance spectrum)")
    if np.any(lam < 0):
        raise ValueError("eigenvalues must be non-negative (a covariance spectrum)")
    if not np.any(lam > 0):
        raise ValueError("eigenvalues must contain a positive value (zero-variance data never collapses)")
    return lam


def _from_data(n_points, eigenvalues, data):
    """(N, spectrum) from the arguments, or from a data array (its size and covariance spectrum)."""
    if data is None:
        if n_points is None or eigenvalues is None:
            raise ValueError("give n_points and eigenvalues, or data (an (N, d) array)")
        return n_points, eigenvalues
    if n_points is not None or eigenvalues is not None:
        raise ValueError("give either data or (n_points, eigenvalues), not both")
    from ..spectrum import covariance_spectrum

    spec = covariance_spectrum(data)
    return spec.n, spec.eigenvalues


def collapse_snr(n_points=None, eigenvalues=None, *, data=None) -> float:
    """snr_C solving log N = 1/2 sum_k log(1 + snr lambda_k) (Biroli et al. 2024).

    Parameters
    ----------
    n_points : int >= 2
        Training-set size N.
    eigenvalues : (d,) array
        Data covariance spectrum (zeros allowed: directions without variance do not count).
    data : (N, d) array, optional
        Instead of the two above: N and the spectrum of this array (:func:`covariance_spectrum`).

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> round(sd.collapse_snr(10, [1.0, 1.0]), 8)  # log 10 = 1/2 * 2 log(1 + snr): snr = 9
    9.0
    """
    from scipy.optimize import brentq

    n_points, eigenvalues = _from_data(n_points, eigenvalues, data)
    n = _checks.check_positive_int(n_points, "n_points")
    if n < 2:
        raise ValueError(f"n_points must be at least 2 (one point cannot collapse), got {n}")
    lam = _spectrum(eigenvalues)
    lam = lam[lam > 0]
    target = np.log(n)

    def f(log_snr):
        return 0.5 * np.sum(np.log1p(np.exp(log_snr) * lam)) - target

    lo, hi = -50.0, 50.0
    while f(hi) < 0:
        hi += 50.0
    return float(np.exp(brentq(f, lo, hi, xtol=1e-14, rtol=1e-14)))


@references("biroli2024")
def collapse_time(n_points=None, eigenvalues=None, schedule: Schedule | None = None, *, data=None) -> float:
    """Predicted collapse time t_C of the empirical model of N points (Biroli et al. 2024).

    Returns the time at which alpha_t^2 / sigma_t^2 = :func:`collapse_snr`
    on ``schedule`` (default Ornstein-Uhlenbeck: t_C = 1/2 log(1 + 1/snr_C)).
    Raises if the schedule cannot reach that snr. ``data`` (an (N, d) array) replaces
    ``n_points`` and ``eigenvalues``.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> bool(np.isclose(sd.collapse_time(1000, np.ones(10)), 0.1446, atol=1e-4))  # N = 1,000 points, d = 10
    True
    """
    schedule = OrnsteinUhlenbeck() if schedule is None else schedule
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    return float(schedule.t_of_snr(collapse_snr(n_points, eigenvalues, data=data)))


@dataclass(frozen=True, repr=False)
class CollapseCurve(TidyResult):
    """Posterior over training points versus t (means with standard errors over queries).

    Attributes
    ----------
    times : (T,)
    entropy, entropy_stderr : (T,)  entropy of r_i(x_t) in nats
    participation, participation_stderr : (T,)  1 / sum_i r_i^2 (effective number of points)
    origin_weight, origin_weight_stderr : (T,)
        Weight r_i of the training point each query was noised from (NaN for fresh data).
    source : {"training", "fresh"}
    n_points : int
    """

    times: np.ndarray
    entropy: np.ndarray
    entropy_stderr: np.ndarray
    participation: np.ndarray
    participation_stderr: np.ndarray
    origin_weight: np.ndarray
    origin_weight_stderr: np.ndarray
    source: str
    n_points: int

    def to_rows(self) -> list[dict]:
        """One dict per time: t, entropy, participation, origin_weight and their standard errors."""
        keys = ("entropy", "participation", "origin_weight")
        return [
            {
                "t": float(t),
                **{k: float(getattr(self, k)[i]) for k in keys},
                **{f"{k}_stderr": float(getattr(self, f"{k}_stderr")[i]) for k in keys},
            }
            for i, t in enumerate(self.times)
        ]

    def plot(self, ax=None):
        """The collapse against t with 1 s.e. bands; returns the Axes.

        Training queries: the mean origin weight (left axis) and the posterior entropy over points
        (right axis, nats); the Axes of the origin weight is returned. Fresh queries (no origin):
        the posterior entropy with error bars and log N, on one axis."""
        ax = axes(ax)
        if self.source == "fresh":
            ax.errorbar(self.times, self.entropy, yerr=self.entropy_stderr, marker="o", ms=3, lw=1)
            ax.axhline(np.log(self.n_points), ls="--", c="gray", lw=1, label="log N")
            ax.set_xscale("log")
            ax.set_xlabel("t")
            ax.set_ylabel("entropy of p(i | x_t) [nats]")
            return ax
        w, ws = self.origin_weight, self.origin_weight_stderr
        ax.plot(self.times, w, "k-", label="origin weight")
        ax.fill_between(self.times, w - ws, w + ws, color="k", alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("mean posterior weight of the origin point")
        ax.set_ylim(-0.02, 1.02)
        ax2 = ax.twinx()
        ax2.plot(self.times, self.entropy, "C0--", lw=1, label="entropy")
        ax2.axhline(np.log(self.n_points), color="C0", lw=0.5, ls=":")
        ax2.set_ylabel("posterior entropy over the N points (nats; dotted: log N)", color="C0")
        ax.set_title(f"collapse ({self.source}), N = {self.n_points}", fontsize=9)
        return ax

    def measured_collapse_time(self, level: float = 0.5) -> float:
        """Largest t where the mean origin weight reaches ``level`` (log-linear interpolation).

        For fresh queries (no origin) the criterion is participation <= 1 / level.
        NaN if the curve never crosses.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must lie in (0, 1), got {level}")
        if self.source == "training":
            y = self.origin_weight - level
        else:
            y = 1.0 / level - self.participation
        above = np.nonzero(y >= 0)[0]
        if above.size == 0:
            return float("nan")
        i = int(above.max())
        if i == self.times.size - 1:
            return float(self.times[i])
        # y crosses from >= 0 at times[i] to < 0 at times[i + 1]: interpolate in log t
        u0, u1 = np.log(self.times[i]), np.log(self.times[i + 1])
        frac = y[i] / (y[i] - y[i + 1])
        return float(np.exp(u0 + frac * (u1 - u0)))


@references("biroli2024")
def posterior_collapse(
    model: ExactMixture,
    times,
    *,
    queries=None,
    n: int = 256,
    rng: np.random.Generator | None = None,
    progress: bool = False,
) -> CollapseCurve:
    """Measure how concentrated the exact posterior over training points is at each time.

    Parameters
    ----------
    model : EmpiricalDistribution
    times : (T,) forward times (t > t_min)
    queries : (M, d) array, optional
        Fresh clean data (not training points) to noise; by default ``n``
        training points drawn uniformly (with their point of origin recorded).
    n : int
        Number of training points to noise when ``queries`` is None.
    rng : numpy Generator, optional
    progress : bool

    Returns
    -------
    CollapseCurve
        One eps per query shared by all times (common random numbers).
    """
    require(model, ExactMixture, purpose="an EmpiricalDistribution or mixture: its component posterior")
    if model.n_components < 2:
        raise ValueError("model must have at least 2 training points")
    ts = _checks.check_times(times, model.schedule, allow_zero=False)
    rng = _checks.check_rng(rng)
    if queries is None:
        n = _checks.check_positive_int(n, "n")
        origin = rng.choice(model.n_components, size=n, p=model.weights)
        x0 = model.means[origin]
        source = "training"
    else:
        x0 = _checks.as_points(queries, model.dim, "queries")
        origin = None
        source = "fresh"
    eps = rng.standard_normal(x0.shape)
    m = x0.shape[0]
    out = {k: np.empty(ts.size) for k in ("h", "hs", "p", "ps", "w", "ws")}
    it = iterate(range(ts.size), progress, "posterior collapse")
    for j in it:
        t = ts[j]
        x = float(model.schedule.alpha(t)) * x0 + float(model.schedule.sigma(t)) * eps
        r = model.component_posterior(x, t)
        h = _posterior_entropy(r)
        pr = 1.0 / np.einsum("ij,ij->i", r, r)
        se = np.sqrt(1.0 / m) if m > 1 else np.nan
        out["h"][j], out["hs"][j] = h.mean(), h.std(ddof=1) * se if m > 1 else np.nan
        out["p"][j], out["ps"][j] = pr.mean(), pr.std(ddof=1) * se if m > 1 else np.nan
        if origin is not None:
            w = r[np.arange(m), origin]
            out["w"][j], out["ws"][j] = w.mean(), w.std(ddof=1) * se if m > 1 else np.nan
        else:
            out["w"][j] = out["ws"][j] = np.nan
    return CollapseCurve(
        times=ts,
        **estimates(
            entropy=(out["h"], out["hs"]), participation=(out["p"], out["ps"]), origin_weight=(out["w"], out["ws"])
        ),
        source=source,
        n_points=model.n_components,
    )


@dataclass(frozen=True, repr=False)
class ExcessEntropy(TidyResult):
    """Biroli et al.'s excess-entropy density f^e(t) of the empirical model (see :func:`excess_entropy`).

    Attributes
    ----------
    times : (T,)
    value, value_stderr : (T,) f^e(t) and its Monte Carlo standard error
    n_points : N, training points
    dim : d
    """

    times: np.ndarray
    value: np.ndarray
    value_stderr: np.ndarray
    n_points: int
    dim: int

    def __repr__(self) -> str:
        ratio = np.log(self.n_points) / self.dim
        return f"ExcessEntropy(times={self.times.size}, N={self.n_points}, d={self.dim}, log N / d={ratio:.4g})"

    def collapse_time(self) -> float:
        """Largest grid time at which f^e <= 0 within 2 s.e. (the entropy is that of N separate
        Gaussians: collapse); NaN if none."""
        ok = self.value <= 2 * self.value_stderr
        return float(self.times[ok].max()) if np.any(ok) else float("nan")

    def to_rows(self) -> list[dict]:
        return [
            {"t": float(t), "f_e": float(v), "f_e_stderr": float(s)}
            for t, v, s in zip(self.times, self.value, self.value_stderr)
        ]

    def plot(self, ax=None, *, label: str = "excess entropy"):
        """The excess entropy against t with a 1 s.e. band (log t axis); returns the Axes."""
        from .._results import band

        ax = axes(ax)
        band(ax, self.times, self.value, self.value_stderr, label=label, marker="o", ms=3)
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("excess entropy [nats]")
        return ax


def excess_entropy(
    model: ExactMixture, times, *, n: int = 1000, rng: np.random.Generator | int | None = None, progress: bool = False
) -> ExcessEntropy:
    r"""The collapse criterion of Biroli et al. (2024, eq. 5 and their ``Experiment_collapse.py``).

        f^e(t) = log N / d + (1/d) E log p^e_t(x) + 1/2 (1 + log(2 pi sigma_t^2)),

    with p^e_t the exact empirical density of N points in d dimensions and x noised training
    points (x = alpha_t y_mu + sigma_t eps, mu uniform), the states the empirical model's reverse
    dynamics visits. log N / d + 1/2 log(2 pi e sigma_t^2) is the entropy density of N
    well-separated Gaussians N(alpha y_mu, sigma^2 I), so f^e >= 0 measures the entropy that the
    overlap of the Gaussians removes: f^e -> 0 is collapse onto the training points (t < t_C),
    f^e -> log N / d when the points are far inside one Gaussian (large t). Their code writes
    Delta_t = 1 - alpha_bar_t for sigma_t^2 (variance-preserving); here it is the schedule's sigma_t^2.
    Monte Carlo over ``n`` draws, one noise per draw shared by all times.
    """
    require(model, ExactMixture, purpose="an EmpiricalDistribution: log_prob over its training points")
    n_pts = int(model.n_components)
    if n_pts < 2:
        raise ValueError("model must have at least 2 training points")
    ts = _checks.check_times(times, model.schedule, allow_zero=False)
    n = _checks.check_positive_int(n, "n")
    if n < 2:
        raise ValueError("n must be at least 2 (standard errors)")
    rng = _checks.check_rng(rng)
    d = int(model.dim)
    origin = rng.choice(n_pts, size=n, p=model.weights)
    y = model.means[origin]
    eps = rng.standard_normal(y.shape)
    val, se = np.empty(ts.size), np.empty(ts.size)
    it = iterate(range(ts.size), progress, "excess entropy")
    for j in it:
        t = ts[j]
        a, s2 = float(model.schedule.alpha(t)), float(model.schedule.sigma2(t))
        lp = np.asarray(model.log_prob(a * y + np.sqrt(s2) * eps, t), dtype=np.float64) / d
        const = np.log(n_pts) / d + 0.5 * (1.0 + np.log(2 * np.pi * s2))
        val[j] = lp.mean() + const
        se[j] = lp.std(ddof=1) / np.sqrt(n)
    return ExcessEntropy(times=ts, value=val, value_stderr=se, n_points=n_pts, dim=d)
