r"""I(Y; X_t) from denoisers alone, through the I-MMSE identity.

For the Gaussian channel x = sqrt(snr) x_0 + n (equivalently x_t = alpha x_0 +
sigma eps with snr = alpha^2 / sigma^2), Guo, Shamai & Verdu (2005) give
d I(X_0; X)/d snr = 1/2 mmse(snr). Applying it with and without the label and
subtracting (I(Y; X) = I(X_0; X) - I(X_0; X | Y) when Y depends on X only
through X_0) gives, with D(x) = E[x_0 | x] and D(x, y) = E[x_0 | x, y],

    d I(Y; X_snr) / d snr = 1/2 E |D(x, y) - D(x)|^2,

so, in log-snr lambda (d snr = snr d lambda; Kong et al., "Information-theoretic
diffusion", ICLR 2023, use the same change of variable),

    I(Y; X_t) = 1/2 int_{-inf}^{lambda_t} snr E|D(x_lambda, y) - D(x_lambda)|^2 d lambda
              = 1/2 int_{-inf}^{lambda_t} E|eps_hat(x, y) - eps_hat(x)|^2 d lambda,

and H(Y | X_t) - H(Y | X_0) = 1/2 int_{lambda_t}^{+inf} (same integrand). (The
upper-limit form is the conditional entropy, equal to I(Y; X_t) only after
subtracting from H(Y | X_0) + I(Y; X_0); for classes that X_0 determines,
H(Y | X_t) = H(Y) - I(Y; X_t).)

Only denoisers enter, so the estimator also works for trained networks that give
a conditional and an unconditional denoiser: an independent cross-check of
:func:`~statphys_diffusion.mutual_information`, which needs the exact
posterior. Below the schedule's lowest log-snr lambda_lo the integrand tends to
snr sum_y pi_y |m_y - m|^2 (class means of x_0 against the overall mean), so
the missing piece is added to first order: 1/2 snr_lo sum_y pi_y |m_y - m|^2.
"""

from __future__ import annotations

import numpy as np

from .. import _checks, _progress
from ..citations import references
from ..protocols import ConditionalDenoiser, Denoiser, Samplable, require, satisfies
from .information import EntropyEstimate

__all__ = ["mutual_information_immse"]


def _data(model, data, n, rng):
    if data is None:
        if not satisfies(model, Samplable):
            raise ValueError("pass data=(x0, y) for a model that cannot sample its own training data")
        draws = model.sample(n, 0.0, rng=rng)
        if draws.labels is None:
            raise ValueError("model must be labelled (pass labels=... when building it) to measure class information")
        return np.asarray(draws.x0, dtype=np.float64), np.asarray(draws.labels)
    try:
        x0, y = data
    except (TypeError, ValueError):
        raise ValueError("data must be a pair (x0 of shape (n, d), y of shape (n,))") from None
    x0 = _checks.as_float_array(x0, "data[0] (x0)")
    y = np.asarray(y)
    if x0.ndim != 2 or y.shape != (x0.shape[0],) or x0.shape[0] < 2:
        raise ValueError(f"data must be (x0 (n, d), y (n,)) with n >= 2, got shapes {x0.shape} and {y.shape}")
    return x0, y


@references("guo2005", "kong2023")
def mutual_information_immse(
    model: ConditionalDenoiser,
    times,
    *,
    data=None,
    n: int = 2000,
    nodes: int = 8,
    rng: np.random.Generator | None = None,
    progress: bool = False,
) -> EntropyEstimate:
    """I(Y; X_t) in nats by the I-MMSE identity, from conditional and unconditional denoisers.

    Parameters
    ----------
    model : object with ``schedule``, ``denoise(x, t)`` and ``denoise(x, t, y=labels)``
        An exact model or a wrapped network.
    times : float or (T,) array of forward times (t > t_min)
    data : (x0, y), optional
        Clean samples with their labels; by default ``n`` exact draws from ``model``.
    n : int
        Draws when ``data`` is not given.
    nodes : int
        Gauss-Legendre nodes per panel of log-snr; the range from lambda_lo =
        max(lowest log-snr of the schedule, -15) up to the largest requested
        log-snr is cut at the requested times and into panels at most 1.5 wide
        (the integrand is smooth in log-snr, with features about one unit wide).
    rng : numpy Generator, optional
    progress : bool

    Returns
    -------
    EntropyEstimate
        ``method="immse"``; the standard error is that of the per-draw integrals
        (one (x_0, eps) per draw shared by all log-snr nodes).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.3, labels=[0, 1])
    >>> t = [0.2, 1.0]
    >>> i_mmse = sd.mutual_information_immse(gm, t, n=4000, rng=0).value  # from denoisers only
    >>> i_exact = sd.mutual_information(gm, t, n=4000, rng=0).value  # from the exact class posterior
    >>> bool(np.allclose(i_mmse, i_exact, atol=0.02))
    True
    """
    require(model, Denoiser, purpose="I-MMSE integrates denoiser differences")
    sch = model.schedule
    ts = _checks.check_times(times, sch, allow_zero=False)
    nodes = _checks.check_positive_int(nodes, "nodes")
    n = _checks.check_positive_int(n, "n")
    rng = _checks.check_rng(rng)
    x0, y = _data(model, data, n, rng)
    eps = rng.standard_normal(x0.shape)
    classes, codes = np.unique(y, return_inverse=True)
    prior = np.bincount(codes) / y.size
    m_all = x0.mean(axis=0)
    between = sum(prior[c] * float(np.sum((x0[codes == c].mean(axis=0) - m_all) ** 2)) for c in range(classes.size))

    lam_t = np.asarray(sch.log_snr(ts), dtype=np.float64)
    lam_top = float(sch.log_snr(sch.t_max)) if np.isfinite(sch.t_max) else -np.inf
    lam_lo = max(lam_top, min(-15.0, float(lam_t.min())))
    panel = 1.5
    order = np.argsort(lam_t)
    edges = np.concatenate([[lam_lo], lam_t[order]])
    gl_x, gl_w = np.polynomial.legendre.leggauss(nodes)
    per_draw = np.empty((x0.shape[0], ts.size))
    acc = np.full(x0.shape[0], 0.5 * np.exp(lam_lo) * between)
    intervals = _progress.iterate(range(ts.size), progress, "I-MMSE")
    for j in intervals:
        lo, hi = edges[j], edges[j + 1]
        n_pan = int(np.ceil((hi - lo) / panel)) if hi > lo else 0
        for p in range(n_pan):
            p_lo, p_hi = lo + (hi - lo) * p / n_pan, lo + (hi - lo) * (p + 1) / n_pan
            lam = 0.5 * (p_hi + p_lo) + 0.5 * (p_hi - p_lo) * gl_x
            for lam_i, w_i in zip(lam, gl_w):
                t = float(sch.t_of_snr(np.exp(lam_i)))
                a, s = float(sch.alpha(t)), float(sch.sigma(t))
                x = a * x0 + s * eps
                diff = np.asarray(model.denoise(x, t, y=y), dtype=np.float64) - np.asarray(
                    model.denoise(x, t), dtype=np.float64
                )
                acc = acc + 0.5 * (p_hi - p_lo) * w_i * 0.5 * np.exp(lam_i) * np.einsum("ij,ij->i", diff, diff)
        per_draw[:, order[j]] = acc
    m = per_draw.shape[0]
    return EntropyEstimate(ts, per_draw.mean(axis=0), per_draw.std(axis=0, ddof=1) / np.sqrt(m), "immse")
