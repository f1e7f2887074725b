r"""The entropy rate dH(Y | X_t)/dt and its per-class profiles (result 1).

Handke, Koulischer, Raya & Ambrogioni, "Measuring Semantic Information
Production in Generative Diffusion Models" (arXiv 2506.10433): class decisions
are made where the conditional entropy of the label changes fastest, i.e. at
the peak of the entropy rate

    H'(t) = d/dt E[ h(X_t, t) ],   h(x, t) = -sum_y p_t(y | x) log p_t(y | x).

The derivative is taken of the estimator itself, never by differencing two
independent estimates. Writing X_t through a reparameterisation whose random
part does not depend on t, d/dt E[h] = E[dh/dt along the path]:

- Monte Carlo: x_t = alpha_t x_0 + sigma_t eps, one draw (x_0, eps) shared by
  every time (common random numbers), velocity alpha_t' x_0 + sigma_t' eps;
- 1-D quadrature: x = alpha_t mu_k + s_k(t) z per component k, z ~ N(0, 1),
  s_k^2 = alpha_t^2 v_k + sigma_t^2, velocity alpha_t' mu_k + s_k'(t) z,
  integrated over z by adaptive quadrature.

dh/dt along the path is exact (module ``_resp_rate``): no finite differences.

Per-class profiles condition on the class of the draw: on the true class y_0
of x_0 (the component's label), and on the generated class, the Bayes decision
argmax_y p_0(y | x_0) of the clean sample that the exact reverse process would
deliver from x_t (exact reverse dynamics have the joint law of the forward
pair (x_t, x_0)). For point masses and for non-overlapping classes the two
coincide. H'(t) >= 0 in forward time (data processing); information is produced
in reverse time where H' is large, and the peak time of each class is where its
profile is largest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from .. import _checks, _progress
from .. import _resp_rate as rr
from .._results import TidyResult, axes, estimates, legend
from ..citations import references
from ..protocols import ConditionalDenoiser, ExactMixture, require, satisfies
from .information import QUAD_MAX_COMPONENTS, _labelled, _onehot, _quadrature_components_1d

__all__ = ["EntropyRate", "entropy_rate", "track_entropy_rate"]


@dataclass(frozen=True, repr=False)
class EntropyRate(TidyResult):
    """H(Y | X_t), its time derivative and per-class profiles on a time grid (nats, nats per unit t).

    Attributes
    ----------
    times : (T,) increasing forward times
    entropy, entropy_stderr : (T,)
        H(Y | X_t) and its standard error (0 for quadrature).
    rate, rate_stderr : (T,)
        dH(Y | X_t)/dt.
    classes : (C,) class labels (order of ``model.classes``)
    class_entropy, class_rate, class_rate_stderr : (C, T)
        Conditioned on the true class y_0 = c: E[h | y_0 = c] and its derivative.
    generated_rate, generated_rate_stderr : (C, T)
        Conditioned on the generated class (always Monte Carlo; NaN for a class
        no draw was generated in).
    class_counts, generated_counts : (C,)
        Monte Carlo draws per true class and per generated class.
    peak_time, peak_time_stderr : (C,)
        Time of the largest true-class rate (refined by a parabola in log t
        through the grid maximum and its neighbours), with a bootstrap standard
        error over draws (0 for quadrature, where only the grid limits it).
    generated_peak_time, generated_peak_time_stderr : (C,)
    method : {"quadrature", "monte_carlo", "online"}
    n : int
        Monte Carlo draws used (also for the generated-class profiles); chains for ``"online"``.
    log_snr_speed : (T,) -d log snr_t / dt at each time
    log_snr_peak_time_stderr : (C,)
        Bootstrap standard error of :attr:`log_snr_peak_time` (0 for quadrature).
    """

    times: np.ndarray
    entropy: np.ndarray
    entropy_stderr: np.ndarray
    rate: np.ndarray
    rate_stderr: np.ndarray
    classes: np.ndarray
    class_entropy: np.ndarray
    class_rate: np.ndarray
    class_rate_stderr: np.ndarray
    generated_rate: np.ndarray
    generated_rate_stderr: np.ndarray
    class_counts: np.ndarray
    generated_counts: np.ndarray
    peak_time: np.ndarray
    peak_time_stderr: np.ndarray
    generated_peak_time: np.ndarray
    generated_peak_time_stderr: np.ndarray
    method: str
    n: int
    log_snr_speed: np.ndarray | None = None
    log_snr_peak_time_stderr: np.ndarray | None = None

    @property
    def log_snr_rate(self) -> np.ndarray:
        """-dH(Y | X_t)/d log snr_t = rate / (-d log snr/dt), nats per e-fold of SNR, (T,).

        The rate per unit of log-SNR, the variable in which the linear DDPM schedule is far from
        uniform (it spends as many e-folds of SNR in its last ~30 steps as in the 600 before)."""
        return self.rate / self._speed()

    @property
    def class_log_snr_rate(self) -> np.ndarray:
        """Per-class profiles per unit log-SNR, (C, T)."""
        return self.class_rate / self._speed()[None, :]

    def _speed(self) -> np.ndarray:
        if self.log_snr_speed is None:
            raise ValueError("this EntropyRate has no log_snr_speed: the per-log-SNR rates are not available")
        return self.log_snr_speed

    @property
    def log_snr_peak_time(self) -> np.ndarray:
        """Per class, the time at which the per-log-SNR profile peaks (grid argmax refined by a
        parabola in log t, as :attr:`peak_time`; no bootstrap error), (C,)."""
        return np.array([_peak(self.times, prof) for prof in self.class_log_snr_rate])

    def plot(
        self,
        ax=None,
        *,
        per: str = "time",
        classes: bool = True,
        class_names=None,
        color: str = "k",
        label: str = "H(Y | X_t)",
    ):
        """The entropy rate against t with a 1 s.e. band, and the per-class profiles; returns the Axes.

        ``per="time"`` draws -dH/dt, ``per="log_snr"`` the rate per e-fold of SNR,
        -dH/d log snr_t (needs :attr:`log_snr_speed`). ``class_names``: one legend name per entry
        of :attr:`classes` (default ``"class <label>"``). ``color`` and ``label`` style the total
        profile, so several results overlay on one Axes (with ``classes=False``).
        """
        if class_names is not None and len(class_names) != len(self.classes):
            raise ValueError(f"class_names must have one name per class ({len(self.classes)}), got {len(class_names)}")
        _checks.check_choice(per, ("time", "log_snr"), "per")
        scale = 1.0 if per == "time" else 1.0 / self._speed()
        ax = axes(ax)
        rate, se = self.rate * scale, self.rate_stderr * scale
        ax.plot(self.times, rate, "-", color=color, lw=1.5, label=label)
        ax.fill_between(self.times, rate - se, rate + se, color=color, alpha=0.15, lw=0)
        if classes:
            for c, lab in enumerate(self.classes):
                name = f"class {_checks.plain_label(lab)}" if class_names is None else str(class_names[c])
                ax.plot(self.times, self.class_rate[c] * scale, lw=0.9, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("-dH/dt (nats per unit t)" if per == "time" else "-dH/d log snr (nats per e-fold)")
        legend(ax, fontsize=7)
        return ax

    def rows(self) -> list[dict]:
        """Deprecated name of :meth:`to_rows` (kept for one release)."""
        import warnings

        warnings.warn("EntropyRate.rows() is deprecated: use to_rows()", DeprecationWarning, stacklevel=2)
        return self.to_rows()

    def to_rows(self) -> list[dict]:
        """Tidy rows (one per class and time, plus class ``"all"``) for CSV output."""
        out = []
        for i, t in enumerate(self.times):
            out.append(
                {
                    "class": "all",
                    "t": float(t),
                    "entropy": float(self.entropy[i]),
                    "entropy_stderr": float(self.entropy_stderr[i]),
                    "rate": float(self.rate[i]),
                    "rate_stderr": float(self.rate_stderr[i]),
                    "generated_rate": float("nan"),
                    "generated_rate_stderr": float("nan"),
                }
            )
        for c, lab in enumerate(self.classes):
            for i, t in enumerate(self.times):
                out.append(
                    {
                        "class": _checks.plain_label(lab),
                        "t": float(t),
                        "entropy": float(self.class_entropy[c, i]),
                        "entropy_stderr": float("nan"),
                        "rate": float(self.class_rate[c, i]),
                        "rate_stderr": float(self.class_rate_stderr[c, i]),
                        "generated_rate": float(self.generated_rate[c, i]),
                        "generated_rate_stderr": float(self.generated_rate_stderr[c, i]),
                    }
                )
        return out


def _log_snr_speed(schedule, ts: np.ndarray) -> np.ndarray:
    """-d log snr_t / dt = 2 (sigma'/sigma - alpha'/alpha) > 0 at each time."""
    a, da = np.asarray(schedule.alpha(ts), dtype=np.float64), np.asarray(schedule.dalpha(ts), dtype=np.float64)
    s, ds = np.asarray(schedule.sigma(ts), dtype=np.float64), np.asarray(schedule.dsigma(ts), dtype=np.float64)
    return 2.0 * (ds / s - da / a)


# -- peak times -------------------------------------------------------------------------------
def _peak(times: np.ndarray, profile: np.ndarray) -> float:
    """Maximiser of a sampled profile: grid argmax refined by a parabola in log t."""
    if not np.all(np.isfinite(profile)):
        return float("nan")
    i = int(np.argmax(profile))
    if i == 0 or i == times.size - 1:
        return float(times[i])
    u = np.log(times[i - 1 : i + 2])
    f = profile[i - 1 : i + 2]
    coef = np.polyfit(u - u[1], f, 2)
    if coef[0] >= 0:
        return float(times[i])
    u_star = np.clip(-coef[1] / (2 * coef[0]), u[0] - u[1], u[2] - u[1])
    return float(np.exp(u[1] + u_star))


def _bootstrap_peak(times, per_draw: np.ndarray, rng: np.random.Generator, n_boot: int) -> float:
    """Standard deviation of the peak time over bootstrap resamples of the draws."""
    m = per_draw.shape[0]
    if m < 2 or n_boot < 2:
        return float("nan")
    counts = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot)
    means = counts @ per_draw / m
    peaks = np.array([_peak(times, row) for row in means])
    return float(np.std(peaks, ddof=1))


def _generated_profile(ts, hd_sel: np.ndarray, rng, n_boot: int):
    """(rate, its s.e., peak time, bootstrap s.e. of the peak) of the draws generated in one class."""
    rate, se = _mean_se(hd_sel)
    return rate, se, _peak(ts, rate), _bootstrap_peak(ts, hd_sel, rng, n_boot)


def _class_profile(ts, h_sel: np.ndarray, hd_sel: np.ndarray, speed: np.ndarray, rng, n_boot: int):
    """One class's (entropy, rate, rate s.e., peak time, its bootstrap s.e., s.e. of the log-SNR peak)."""
    ent = h_sel.mean(axis=0) if h_sel.shape[0] else np.full(ts.size, np.nan)
    rate, se = _mean_se(hd_sel)
    peak_se = _bootstrap_peak(ts, hd_sel, rng, n_boot)
    return ent, rate, se, _peak(ts, rate), peak_se, _bootstrap_peak(ts, hd_sel / speed, rng, n_boot)


# -- Monte Carlo ----------------------------------------------------------------------------
def _generated_codes(model, x0: np.ndarray, comps: np.ndarray) -> np.ndarray:
    """Bayes decision of the clean draw: the component's class for point masses, else argmax p_0(y | x_0)."""
    codes = model.components.require_labels()
    if model.singular:
        return codes[comps]
    return np.argmax(model.class_posterior(x0, model.schedule.t_min), axis=1)


def _chunk_rows(model) -> int:
    # about 6 (rows x K) float64 temporaries per time: keep them near 400 MB
    return int(max(1, min(4096, 8_000_000 // max(1, model.n_components))))


def _monte_carlo(model, ts, n, rng, progress) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-draw h and dh/dt, shapes (n, T), with true and generated class codes (n,)."""
    draws = model.sample(n, 0.0, rng=rng)
    x0 = np.asarray(draws.x0, dtype=np.float64)
    eps = rng.standard_normal(x0.shape)
    true_codes = model.components.require_labels()[draws.components]
    gen_codes = _generated_codes(model, x0, draws.components)
    onehot = _onehot(model)
    iso = model.covariance_type == "isotropic"
    mu = model.components.means
    h = np.empty((n, ts.size))
    hd = np.empty((n, ts.size))
    step = _chunk_rows(model)
    starts = range(0, n, step)
    bar = _progress.bar(progress, "entropy rate", len(starts) * ts.size)
    for lo in starts:
        sl = slice(lo, min(n, lo + step))
        xc, ec = x0[sl], eps[sl]
        if iso:
            p0, pe = xc @ mu.T, ec @ mu.T
            x0sq, x0e, esq = (xc * xc).sum(1), (xc * ec).sum(1), (ec * ec).sum(1)
        for j, t in enumerate(ts):
            a, ad, s, sd, _, _ = rr.coefficients(model.schedule, t)
            if iso:
                xm, xdm = a * p0 + s * pe, ad * p0 + sd * pe
                xx = a * a * x0sq + 2 * a * s * x0e + s * s * esq
                xxd = a * ad * x0sq + (a * sd + ad * s) * x0e + s * sd * esq
                ell, rate = rr.isotropic_logits_and_rates(model, xm, xdm, xx, xxd, t)
            else:
                ell, rate = rr.generic_logits_and_rates(model, a * xc + s * ec, ad * xc + sd * ec, t)
            _, _, h[sl, j], hd[sl, j] = rr.class_posterior_and_rate(ell, rate, onehot)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return h, hd, true_codes, gen_codes


def _mean_se(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape[0] == 0:
        nan = np.full(a.shape[1], np.nan)
        return nan, nan
    se = a.std(axis=0, ddof=1) / np.sqrt(a.shape[0]) if a.shape[0] > 1 else np.full(a.shape[1], np.nan)
    return a.mean(axis=0), se


@references("handke2025")
def entropy_rate(
    model: ExactMixture | ConditionalDenoiser,
    times,
    *,
    n: int = 20000,
    rng: np.random.Generator | None = None,
    method: str = "auto",
    n_bootstrap: int = 200,
    progress: bool = False,
    groups=None,
) -> EntropyRate:
    """dH(Y | X_t)/dt with per-class profiles and peak times (Handke et al. 2025).

    Parameters
    ----------
    model : labelled GaussianMixture or EmpiricalDistribution, or a class-conditional network
        Exact models are measured pointwise (quadrature or Monte Carlo). A labelled model without
        a pointwise class posterior (a wrapped class-conditional network:
        :class:`~statphys_diffusion.protocols.ConditionalDenoiser`) is routed to the estimator that
        works for networks: ``n`` joint chains per class of
        ``OnlineClassifier(times=grid).run(model, chains="joint")`` on the grid t_max > times
        (decreasing) > t_min, then :func:`track_entropy_rate` (``method="online"`` in the result).
        It needs no unconditional (null) prediction. Give a fine grid (e.g. every DDPM step or
        every few): each grid interval is one DDPM step of the chains.
    times : (T,) strictly increasing forward times inside the schedule (t > t_min)
    n : int
        Monte Carlo draws, shared by all times (common random numbers); also
        used for the generated-class profiles in quadrature mode. For a network: chains per class.
    rng : None, int or numpy Generator
        ``None``: fresh entropy; an int: a seed.
    method : {"auto", "quadrature", "monte_carlo"}
        ``auto``: quadrature for 1-D mixtures of at most 32 components, Monte Carlo otherwise.
    n_bootstrap : int
        Bootstrap resamples for the standard error of each peak time.
    progress : bool
        Show a progress bar over (chunks of draws) x times.
    groups : partition of the classes, optional
        The rate of the coarse decision "which group" (e.g. ``[[0, 1], [2, 3]]``); the
        "classes" of the result are then the group indices 0..G-1.

    Returns
    -------
    EntropyRate

    Notes
    -----
    Monte Carlo cost: for isotropic components (empirical data sets) two GEMMs
    per chunk of draws, x_0 mu^T and eps mu^T, reused at every time
    (x_t . mu_k = alpha x_0 . mu_k + sigma eps . mu_k), then O(n K) per time:
    at CIFAR-10 scale (K = 50,000, d = 3,072) the time grid is nearly free.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-2.0], [2.0]], 0.1, labels=[0, 1])
    >>> er = sd.entropy_rate(gm, [0.3, 0.5, 0.7], rng=0)  # in 1-D by quadrature: no sampling noise
    >>> h = sd.conditional_entropy(gm, [0.49, 0.51], rng=0)
    >>> bool(abs(er.rate[1] - (h.value[1] - h.value[0]) / 0.02) < 1e-3)  # against a finite difference
    True
    """
    if not satisfies(model, ExactMixture) and satisfies(model, ConditionalDenoiser):
        return _network_entropy_rate(model, times, n, rng, n_bootstrap, progress, groups)
    _labelled(model)
    if groups is not None:
        model = cast(ExactMixture, model).relabel(groups)
    model = cast(ExactMixture, model)
    w_cls = _labelled(model)
    require(model, ExactMixture, purpose="entropy_rate needs a GaussianMixture or EmpiricalDistribution")
    ts = _checks.check_times(times, model.schedule, order="increasing", allow_zero=False)
    _checks.check_choice(method, ("auto", "quadrature", "monte_carlo"), "method")
    if method == "quadrature" and model.dim != 1:
        raise ValueError("method='quadrature' needs a 1-D Gaussian mixture")
    n = _checks.check_positive_int(n, "n")
    rng = _checks.check_rng(rng)  # None: fresh entropy; an int: a seed (docs/user_guide/conventions.rst)
    use_quad = method == "quadrature" or (
        method == "auto" and model.dim == 1 and model.n_components <= QUAD_MAX_COMPONENTS
    )
    h, hd, true_codes, gen_codes = _monte_carlo(model, ts, n, rng, progress)
    n_cls = w_cls.size
    boot_rng = np.random.default_rng(rng.integers(2**63))

    gen_rate = np.full((n_cls, ts.size), np.nan)
    gen_se = np.full((n_cls, ts.size), np.nan)
    gen_peak = np.full(n_cls, np.nan)
    gen_peak_se = np.full(n_cls, np.nan)
    counts = np.bincount(gen_codes, minlength=n_cls)
    for c in range(n_cls):
        sel = gen_codes == c
        if sel.any():
            gen_rate[c], gen_se[c], gen_peak[c], gen_peak_se[c] = _generated_profile(ts, hd[sel], boot_rng, n_bootstrap)

    cls_h = np.empty((n_cls, ts.size))
    cls_rate = np.empty((n_cls, ts.size))
    cls_se = np.empty((n_cls, ts.size))
    peak = np.empty(n_cls)
    peak_se = np.empty(n_cls)
    speed = _log_snr_speed(model.schedule, ts)
    ls_peak_se = np.zeros(n_cls)
    if use_quad:
        codes = model.components.require_labels()
        w = model.weights
        both = np.array([_quadrature_components_1d(model, t, rate=True) for t in ts])  # (T, 2, K)
        comp_h, comp_rate = both[:, 0, :].T, both[:, 1, :].T
        for c in range(n_cls):
            wc = np.where(codes == c, w, 0.0) / w_cls[c]
            cls_rate[c] = wc @ comp_rate
            cls_h[c] = wc @ comp_h
            peak[c] = _peak(ts, cls_rate[c])
        cls_se[:] = 0.0
        peak_se[:] = 0.0
        ent, ent_se = w @ comp_h, np.zeros(ts.size)
        rate, rate_se = w @ comp_rate, np.zeros(ts.size)
        name = "quadrature"
    else:
        for c in range(n_cls):
            sel = true_codes == c
            cls_h[c], cls_rate[c], cls_se[c], peak[c], peak_se[c], ls_peak_se[c] = _class_profile(
                ts, h[sel], hd[sel], speed, boot_rng, n_bootstrap
            )
        ent, ent_se = _mean_se(h)
        rate, rate_se = _mean_se(hd)
        name = "monte_carlo"
    return EntropyRate(
        times=ts,
        **estimates(entropy=(ent, ent_se), rate=(rate, rate_se)),
        classes=np.asarray(model.classes),
        class_entropy=cls_h,
        class_rate=cls_rate,
        class_rate_stderr=cls_se,
        generated_rate=gen_rate,
        generated_rate_stderr=gen_se,
        class_counts=np.bincount(true_codes, minlength=n_cls),
        generated_counts=counts,
        peak_time=peak,
        peak_time_stderr=peak_se,
        generated_peak_time=gen_peak,
        generated_peak_time_stderr=gen_peak_se,
        method=name,
        n=n,
        log_snr_speed=speed,
        log_snr_peak_time_stderr=ls_peak_se,
    )


def _network_entropy_rate(model, times, n, rng, n_bootstrap, progress, groups) -> EntropyRate:
    """:func:`entropy_rate` of a labelled network: joint chains on the grid t_max > times > t_min."""
    from ..online_posterior import OnlineClassifier

    require(model, ConditionalDenoiser, labelled=True, purpose="the joint chains condition on each class")
    schedule = model.schedule
    ts = _checks.check_times(times, schedule, order="increasing", allow_zero=False, positive_alpha=True)
    n = _checks.check_positive_int(n, "n")
    rng = _checks.check_rng(rng)
    top = [float(schedule.t_max)] if ts[-1] < float(schedule.t_max) else []
    grid = np.concatenate([top, ts[::-1], [float(schedule.t_min)]])
    track = OnlineClassifier(times=grid, prior="uniform", progress=progress).run(model, n=n, rng=rng, chains="joint")
    if groups is not None:
        track = track.coarse(groups)
    return track_entropy_rate(track, schedule, n_bootstrap=n_bootstrap, rng=rng)


@references("handke2025")
def track_entropy_rate(track, schedule, *, coarse: int = 1, n_bootstrap: int = 200, rng=None) -> EntropyRate:
    """The entropy rate of a tracked class posterior (:class:`~statphys_diffusion.OnlineTrack`).

    The network-side counterpart of :func:`entropy_rate`: h_n = -sum_c p_n(c) log p_n(c) of the
    posterior tracked along each chain (:class:`~statphys_diffusion.OnlineClassifier`), on the
    chain's grid in increasing t (the last, deterministic step to t_min dropped), taking every
    ``coarse``-th grid point from the smallest time up. The rate dH/dt is the chain average of
    each chain's finite-difference derivative (``numpy.gradient``, second order inside the
    grid) -- differentiating the estimator along common paths, as :func:`entropy_rate` does.
    Per-class profiles condition on the class each chain was generated from (joint chains,
    ``track.labels``) and, as ``generated_*``, on the final tracked decision
    argmax_c p_0(c); for null chains both are the final decision. Peak times (in t and per unit
    log-SNR) carry bootstrap standard errors over chains.

    Parameters
    ----------
    track : OnlineTrack
    schedule : Schedule of the chains (for t_min and d log snr / dt)
    coarse : int, thin the grid to every ``coarse``-th time before differencing
    n_bootstrap : int
    rng : None, int or numpy Generator (the bootstrap)
    """
    from ..schedules import Schedule

    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    coarse = _checks.check_positive_int(coarse, "coarse")
    n_bootstrap = _checks.check_positive_int(n_bootstrap, "n_bootstrap")
    rng = _checks.check_rng(rng)
    times = np.asarray(track.times, dtype=np.float64)
    h_all = track.entropy()  # (S + 1, M)
    keep = times > float(schedule.t_min)
    order = np.argsort(times[keep])
    ts = times[keep][order][::coarse]
    h = h_all[keep][order][::coarse].T  # (M, T), increasing t
    if ts.size < 3:
        raise ValueError(f"need at least 3 grid times after thinning by coarse={coarse}, got {ts.size}")
    hd = np.gradient(h, ts, axis=1)
    cls = np.asarray(track.classes)
    index = {_checks.plain_label(c): i for i, c in enumerate(cls)}
    gen_codes = np.argmax(track.log_posterior[-1], axis=1)
    if track.labels is None:
        true_codes = gen_codes
    else:
        true_codes = np.array([index[_checks.plain_label(v)] for v in np.asarray(track.labels)])
    speed = _log_snr_speed(schedule, ts)
    n_cls = cls.size
    out = {k: np.full((n_cls, ts.size), np.nan) for k in ("ce", "cr", "cs", "gr", "gs")}
    peak, peak_se, gpeak, gpeak_se, ls_se = (np.full(n_cls, np.nan) for _ in range(5))
    for c in range(n_cls):
        sel = true_codes == c
        if sel.any():
            out["ce"][c], out["cr"][c], out["cs"][c], peak[c], peak_se[c], ls_se[c] = _class_profile(
                ts, h[sel], hd[sel], speed, rng, n_bootstrap
            )
        sel = gen_codes == c
        if sel.any():
            out["gr"][c], out["gs"][c], gpeak[c], gpeak_se[c] = _generated_profile(ts, hd[sel], rng, n_bootstrap)
    return EntropyRate(
        times=ts,
        **estimates(entropy=_mean_se(h), rate=_mean_se(hd)),
        classes=cls,
        class_entropy=out["ce"],
        class_rate=out["cr"],
        class_rate_stderr=out["cs"],
        generated_rate=out["gr"],
        generated_rate_stderr=out["gs"],
        class_counts=np.bincount(true_codes, minlength=n_cls),
        generated_counts=np.bincount(gen_codes, minlength=n_cls),
        peak_time=peak,
        peak_time_stderr=peak_se,
        generated_peak_time=gpeak,
        generated_peak_time_stderr=gpeak_se,
        method="online",
        n=int(h.shape[0]),
        log_snr_speed=speed,
        log_snr_peak_time_stderr=ls_se,
    )
