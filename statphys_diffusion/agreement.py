r"""How closely an analytic model reproduces a network: patch-size calibration and sample agreement.

Kamb & Ganguli (arXiv 2412.20292) hold their patch models against trained networks in two ways,
both here for any pair of denoisers on one schedule:

- :func:`calibrate_patch_size`: at each noise level, the patch size k whose model denoiser is
  closest (mean squared error per pixel) to the network's on noised held-out images, with the whole
  curve MSE(k); the calibrated k(t) becomes a model's ``patch_size`` through
  :meth:`PatchCalibration.as_function`.
- :func:`sample_agreement`: both run from identical initial noise with one deterministic sampler
  (DDIM with eta = 0, or Heun's probability-flow ODE) on the same time grid, and each sample pair
  gets the coefficient of determination over its pixels,

      r^2_i = 1 - sum_p (a_ip - b_ip)^2 / sum_p (a_ip - mean_p a_i)^2,

  a the network's sample and b the model's (Kamb & Ganguli report its median over samples: 0.94
  for ResNets and UNets on CIFAR-10). Medians sit on a knife edge when the distribution is bimodal,
  so the fraction of samples above a threshold (0.8) is reported too, both with bootstrap
  intervals. Along the network's own trajectory, the MSE between the two denoisers per noise level
  says where they part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import _checks
from ._progress import iterate
from ._results import TidyResult, axes, band
from .citations import references
from .protocols import Denoiser, require

__all__ = [
    "PatchCalibration",
    "calibrate_patch_size",
    "SampleAgreement",
    "sample_agreement",
    "per_sample_r2",
    "r2_intervals",
]


def per_sample_r2(reference, other) -> np.ndarray:
    """r^2 of each row of ``other`` against the same row of ``reference`` (M,), over the row's entries:
    1 - |a - b|^2 / |a - mean(a)|^2 (module docstring). A constant reference row gives -inf or nan.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sd.per_sample_r2(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 2.0, 4.0]]))
    array([0.5])
    """
    a = _checks.as_image_rows(reference, "reference", dtype=np.float64)
    b = _checks.as_image_rows(other, "other", dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"other must have the shape of reference {a.shape}, got {b.shape}")
    resid = np.einsum("ij,ij->i", a - b, a - b)
    centred = a - a.mean(axis=1, keepdims=True)
    total = np.einsum("ij,ij->i", centred, centred)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - resid / total


@dataclass(frozen=True, repr=False)
class PatchCalibration(TidyResult):
    """Output of :func:`calibrate_patch_size`.

    Attributes
    ----------
    times : (T,)
    sizes : (S,) the patch sizes tried
    mse, mse_stderr : (T, S) per-pixel mean squared error to the network's denoiser
    best : (T,) the size of least MSE at each time
    n : noised held-out images per time
    """

    times: np.ndarray
    sizes: np.ndarray
    mse: np.ndarray
    mse_stderr: np.ndarray
    best: np.ndarray
    n: int

    def to_rows(self) -> list[dict]:
        """One dict per (t, size): ``t``, ``patch_size`` (the value tried), ``mse``, ``mse_stderr``, ``best``."""
        return [
            {
                "t": float(t),
                "patch_size": k.item(),
                "mse": float(self.mse[i, j]),
                "mse_stderr": float(self.mse_stderr[i, j]),
                "best": bool(k == self.best[i]),
            }
            for i, t in enumerate(self.times)
            for j, k in enumerate(self.sizes)
        ]

    def as_function(self, schedule=None) -> Callable[[float], float]:
        """t -> the calibrated size at the nearest calibrated time (nearest in log t, or in log-SNR when
        ``schedule`` is given): pass it as a patch model's ``patch_size``."""
        ts, best = self.times.copy(), self.best.copy()
        key = (lambda t: float(schedule.log_snr(t))) if schedule is not None else (lambda t: float(np.log(t)))
        keys = np.array([key(float(t)) for t in ts])

        def k_of_t(t: float):
            return best[int(np.argmin(np.abs(keys - key(float(t)))))].item()

        return k_of_t

    def plot(self, ax=None):
        """MSE against the patch size, one curve per time (1 s.e. bands), the best size marked; returns the Axes."""
        ax = axes(ax)
        for i, t in enumerate(self.times):
            h = band(ax, self.sizes, self.mse[i], self.mse_stderr[i], label=f"t = {t:.3g}", marker="o", ms=3)
            j = int(np.argmin(self.mse[i]))
            ax.plot([self.sizes[j]], [self.mse[i, j]], "*", ms=10, color=h.get_color())
        ax.set_yscale("log")
        ax.set_xlabel("patch size k")
        ax.set_ylabel("MSE to the network's denoiser (per pixel)")
        return ax


@references("kamb2024")
def calibrate_patch_size(
    network: Denoiser,
    model,
    held_out,
    times,
    sizes: Sequence[float],
    *,
    parameter: str = "patch_size",
    n: int = 64,
    rng=None,
    progress: bool = False,
) -> PatchCalibration:
    r"""Per noise level, the patch size of ``model`` whose denoiser is closest to ``network``'s.

    MSE_t(k) = E |D^net_t(x_t) - D^model_t(x_t; k)|^2 / d on x_t = alpha_t x_0 + sigma_t eps, x_0 drawn
    from ``held_out`` (without replacement when it has at least ``n`` rows), the same x_t for every k.

    Parameters
    ----------
    network : the network (any denoiser on the model's schedule)
    model : a patch model whose ``denoise(x, t, patch_size=k)`` takes the size
        (:class:`~statphys_diffusion.LocalEmpirical`, :class:`~statphys_diffusion.EquivariantLocalEmpirical`,
        :class:`~statphys_diffusion.PatchPosteriorAverage`)
    held_out : (N, d) rows or images the network was not trained on
    times : (T,) times with alpha_t, sigma_t > 0
    sizes : the patch sizes to try (or values of ``parameter``)
    parameter : the keyword of ``model.denoise`` that sets the locality scale (``"patch_size"``; for
        :class:`~statphys_diffusion.DataDrivenLocalEmpirical`, ``"threshold"``)
    n : images per time
    rng : None, int or numpy Generator
    progress : bool
    """
    require(network, Denoiser, name="network", purpose="the calibration compares denoisers")
    require(model, Denoiser, purpose="the calibration compares denoisers")
    x0_all = _checks.as_image_rows(held_out, "held_out", dtype=np.float64)
    ts = _checks.check_times(times, network.schedule, allow_zero=False, positive_alpha=True)
    if not isinstance(parameter, str) or not parameter.isidentifier():
        raise ValueError(f"parameter must be the name of a keyword of model.denoise, got {parameter!r}")
    raw = np.atleast_1d(np.asarray(sizes).tolist())
    if parameter == "patch_size":
        ks = np.array([_checks.check_positive_int(k, "sizes") for k in raw])
    else:
        ks = np.array([_checks.check_real(float(k), "sizes") for k in raw])
    if ks.size == 0:
        raise ValueError("sizes must list at least one patch size")
    n = _checks.check_positive_int(n, "n")
    if n < 2:
        raise ValueError("n must be at least 2 (a standard error)")
    rng = _checks.check_rng(rng)
    _same_schedule(network, model, ts)
    mse = np.empty((ts.size, ks.size))
    se = np.empty_like(mse)
    for i in iterate(range(ts.size), progress, "patch calibration"):
        t = float(ts[i])
        a, s = float(network.schedule.alpha(t)), float(network.schedule.sigma(t))
        x0 = x0_all[rng.choice(x0_all.shape[0], n, replace=x0_all.shape[0] < n)]
        xt = a * x0 + s * rng.standard_normal(x0.shape)
        d_net = np.asarray(network.denoise(xt, t), dtype=np.float64)
        for j, k in enumerate(ks):
            value = int(k) if parameter == "patch_size" else float(k)
            diff = d_net - np.asarray(model.denoise(xt, t, **{parameter: value}), dtype=np.float64)
            per = np.mean(diff * diff, axis=1)
            mse[i, j] = per.mean()
            se[i, j] = per.std(ddof=1) / np.sqrt(n)
    best = ks[np.argmin(mse, axis=1)]
    return PatchCalibration(times=ts, sizes=ks, mse=mse, mse_stderr=se, best=best, n=n)


def _same_schedule(network, model, ts) -> None:
    lo, hi = model.schedule.t_min, model.schedule.t_max
    if np.any((ts < lo) | (ts > hi)):
        raise ValueError(
            f"model has another schedule than the network ({model.schedule!r} vs {network.schedule!r}): "
            "build it with schedule=network.schedule"
        )
    for t in ts:
        for fn in ("alpha", "sigma"):
            mine = float(getattr(network.schedule, fn)(float(t)))
            theirs = float(getattr(model.schedule, fn)(float(t)))
            if not np.isclose(mine, theirs, rtol=1e-6, atol=1e-9):
                raise ValueError(
                    f"model has another schedule than the network ({model.schedule!r} vs {network.schedule!r}): "
                    "build it with schedule=network.schedule"
                )


@dataclass(frozen=True, repr=False)
class SampleAgreement(TidyResult):
    """Output of :func:`sample_agreement`.

    Attributes
    ----------
    r2 : (M,) per-sample r^2 of the model's sample against the network's (module docstring)
    median, median_low, median_high : the median r^2 and its bootstrap interval
    fraction_above, fraction_low, fraction_high : the fraction of samples with r^2 > ``threshold``, interval
    threshold, confidence : the threshold and the intervals' confidence level
    times : (S,) the sampler's grid times where the denoisers were compared (the network's trajectory)
    denoiser_mse, denoiser_mse_stderr : (S,) per-pixel MSE between the two denoisers there
    network_samples, model_samples : (M, d) the two sets of samples
    """

    r2: np.ndarray
    median: float
    median_low: float
    median_high: float
    fraction_above: float
    fraction_low: float
    fraction_high: float
    threshold: float
    confidence: float
    times: np.ndarray
    denoiser_mse: np.ndarray
    denoiser_mse_stderr: np.ndarray
    network_samples: np.ndarray
    model_samples: np.ndarray

    def __repr__(self) -> str:
        return (
            f"SampleAgreement(M={self.r2.size}, median r2={self.median:.3f} [{self.median_low:.3f}, "
            f"{self.median_high:.3f}], fraction > {self.threshold:g}: {self.fraction_above:.2f})"
        )

    def to_rows(self) -> list[dict]:
        """One dict per sample: ``sample``, ``r2``."""
        return [{"sample": i, "r2": float(v)} for i, v in enumerate(self.r2)]

    def plot(self, ax=None, *, label: str | None = None):
        """The distribution of per-sample r^2 (histogram) with the median and the threshold; returns the Axes."""
        ax = axes(ax)
        finite = self.r2[np.isfinite(self.r2)]
        lo = min(0.0, float(np.percentile(finite, 2))) if finite.size else 0.0
        ax.hist(np.clip(finite, lo, 1.0), bins=30, range=(lo, 1.0), alpha=0.7, label=label)
        ax.axvline(self.median, color="k", lw=1, label=f"median {self.median:.2f}")
        ax.axvline(self.threshold, color="0.5", ls="--", lw=1)
        ax.set_xlabel("per-sample r^2 against the network")
        ax.set_ylabel("samples")
        return ax


def r2_intervals(
    r2, *, threshold: float = 0.8, n_bootstrap: int = 1000, confidence: float = 0.95, rng=None
) -> dict[str, float]:
    """The median of per-sample r^2 and the fraction above ``threshold``, each with a percentile-bootstrap
    interval (resampling the samples with replacement, ``n_bootstrap`` times).

    Non-finite r^2 (a constant reference sample) count as -inf: below every threshold. Returns a dict
    with ``median``, ``median_low``, ``median_high``, ``fraction_above``, ``fraction_low``,
    ``fraction_high``, ``threshold`` and ``confidence`` (the fields of :class:`SampleAgreement`);
    pieces of one comparison run in batches are summarised by concatenating their r^2 first.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> r = sd.r2_intervals([0.9, 0.95, 0.7, 0.85, 0.99, 0.6], n_bootstrap=200, rng=0)
    >>> r["median"], round(r["fraction_above"], 3)
    (0.875, 0.667)
    >>> r["median_low"] <= r["median"] <= r["median_high"]
    True
    """
    r2 = np.asarray(r2, dtype=np.float64).ravel()
    if r2.size < 2:
        raise ValueError(f"r2 must hold at least 2 values, got {r2.size}")
    threshold = _checks.check_real(threshold, "threshold", hi=1.0)
    confidence = _checks.check_real(confidence, "confidence", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n_bootstrap = _checks.check_positive_int(n_bootstrap, "n_bootstrap")
    rng = _checks.check_rng(rng)
    finite = np.where(np.isfinite(r2), r2, -np.inf)
    boots = finite[rng.integers(0, finite.size, size=(n_bootstrap, finite.size))]
    med_b = np.median(boots, axis=1)
    frac_b = np.mean(boots > threshold, axis=1)
    q = (0.5 * (1 - confidence), 0.5 * (1 + confidence))
    return {
        "median": float(np.median(finite)),
        "median_low": float(np.quantile(med_b, q[0])),
        "median_high": float(np.quantile(med_b, q[1])),
        "fraction_above": float(np.mean(finite > threshold)),
        "fraction_low": float(np.quantile(frac_b, q[0])),
        "fraction_high": float(np.quantile(frac_b, q[1])),
        "threshold": threshold,
        "confidence": confidence,
    }


@references("kamb2024")
def sample_agreement(
    network: Denoiser,
    model: Denoiser,
    sampler,
    noise,
    *,
    t_start: float | None = None,
    network_run=None,
    compare_denoisers: bool = True,
    threshold: float = 0.8,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    rng=None,
) -> SampleAgreement:
    r"""Run ``network`` and ``model`` from the same ``noise`` with one deterministic sampler and compare.

    Parameters
    ----------
    network, model : denoisers on one schedule
    sampler : a deterministic sampler of the package (``DDIM(n, eta=0)``, ``Heun(n)``); both runs use its grid
    noise : (M, d) starting points at ``t_start`` (the sampler's start)
    t_start : float, optional (the sampler's default start)
    network_run : SampleResult, optional
        The network's own run from ``noise`` with this sampler and its trajectory (``return_trajectory=True``),
        reused instead of sampled again (comparing many models with one network); its grid and starting
        points must be those of this call.
    compare_denoisers : bool
        Also compare the two denoisers along the network's trajectory (``times``, ``denoiser_mse``): one
        more model call per grid time and sample. False leaves those three fields empty (and a
        ``network_run`` without its trajectory is accepted).
    threshold : r^2 above which a sample counts as reproduced (0.8)
    n_bootstrap, confidence : the percentile bootstrap of the median and of the fraction
    rng : None, int or numpy Generator (the bootstrap)

    Returns
    -------
    SampleAgreement
    """
    require(network, Denoiser, name="network", purpose="both are sampled")
    require(model, Denoiser, purpose="both are sampled")
    if getattr(sampler, "stochastic", True):
        raise ValueError("sampler must be deterministic (DDIM with eta=0, or Heun): the comparison needs one path")
    x0 = _checks.as_image_rows(noise, "noise", dtype=np.float64)
    if x0.shape[0] < 2:
        raise ValueError("noise must hold at least 2 starting points")
    threshold = _checks.check_real(threshold, "threshold", hi=1.0)
    confidence = _checks.check_real(confidence, "confidence", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    n_bootstrap = _checks.check_positive_int(n_bootstrap, "n_bootstrap")
    rng = _checks.check_rng(rng)
    grid = sampler._grid(network.schedule, t_start, None)
    _same_schedule(network, model, grid[grid > network.schedule.t_min])
    if network_run is None:
        net_run = sampler.sample(network, x_init=x0, t_start=t_start, return_trajectory=compare_denoisers)
    else:
        net_run = network_run
        traj = getattr(net_run, "trajectory", None)
        same_grid = np.array_equal(np.asarray(net_run.times), grid)
        same_start = traj is not None and np.array_equal(traj[0], x0)
        same_size = np.shape(getattr(net_run, "x", ())) == x0.shape
        if not (same_grid and same_size and (same_start or (traj is None and not compare_denoisers))):
            raise ValueError(
                "network_run must be the network's run from this noise with this sampler's grid, with its "
                "trajectory (sampler.sample(network, x_init=noise, return_trajectory=True)); without it only "
                "when compare_denoisers=False"
            )
    mod_run = sampler.sample(model, x_init=x0, t_start=t_start)
    r2 = per_sample_r2(net_run.x, mod_run.x)
    # the two denoisers along the network's own trajectory (every grid time but the last)
    ts, mse, mse_se = [], [], []
    for i in range(grid.size - 1 if compare_denoisers else 0):
        t = float(grid[i])
        if not float(network.schedule.alpha(t)) > 0 or t <= network.schedule.t_min:
            continue
        assert net_run.trajectory is not None
        x = net_run.trajectory[i]
        diff = np.asarray(network.denoise(x, t), dtype=np.float64) - np.asarray(model.denoise(x, t), dtype=np.float64)
        per = np.mean(diff * diff, axis=1)
        ts.append(t)
        mse.append(per.mean())
        mse_se.append(per.std(ddof=1) / np.sqrt(per.size))
    med = r2_intervals(r2, threshold=threshold, n_bootstrap=n_bootstrap, confidence=confidence, rng=rng)
    return SampleAgreement(
        r2=r2,
        **med,
        times=np.array(ts),
        denoiser_mse=np.array(mse),
        denoiser_mse_stderr=np.array(mse_se),
        network_samples=net_run.x,
        model_samples=mod_run.x,
    )
