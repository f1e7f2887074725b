"""Class information along the forward process: H(Y | X_t) and I(Y; X_t).

Result 1 (docs/user_guide/result1_semantic_information.md) (semantic decisions): the conditional entropy of the
label given the noisy state,

    H(Y | X_t) = E_{x ~ p_t} [ -sum_y p_t(y | x) log p_t(y | x) ]   (nats),

and the mutual information I(Y; X_t) = H(Y) - H(Y | X_t). In 1-D Gaussian
mixtures the expectation is an integral against each component's noisy
marginal N(alpha mu_k, alpha^2 v_k + sigma^2), done by adaptive quadrature;
otherwise it is a Monte Carlo average over exact draws x_t = alpha_t x_0 +
sigma_t eps that reuses the same (x_0, eps) at every time of the grid (common
random numbers), so differences between times are much less noisy than the
values themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks, _progress
from .._results import TidyResult, axes, band
from ..citations import references
from ..protocols import ExactMixture, Labelled, require, satisfies

__all__ = ["EntropyEstimate", "conditional_entropy", "mutual_information"]

# ``method="auto"`` integrates 1-D mixtures with at most this many components (one integral per
# component, each costing K): larger ones (1-D empirical data sets) go to Monte Carlo.
QUAD_MAX_COMPONENTS = 32


@dataclass(frozen=True, repr=False)
class EntropyEstimate(TidyResult):
    """Estimates on a time grid, in nats.

    Attributes
    ----------
    times : (T,) array
    value : (T,) array
    stderr : (T,) array
        Monte Carlo standard error (0 for quadrature, whose error is below 1e-9).
    method : {"quadrature", "monte_carlo"}
    """

    times: np.ndarray
    value: np.ndarray
    stderr: np.ndarray
    method: str

    @property
    def value_stderr(self) -> np.ndarray:
        """The result vocabulary's name for :attr:`stderr`."""
        return self.stderr

    def to_rows(self) -> list[dict]:
        """One dict per time: t, value, value_stderr."""
        return [
            {"t": float(t), "value": float(v), "value_stderr": float(s)}
            for t, v, s in zip(self.times, self.value, self.stderr)
        ]

    def plot(self, ax=None, *, label: str | None = None):
        """The estimate against t with a 1 s.e. band (legend ``label``, default the method); returns the Axes."""
        ax = axes(ax)
        band(ax, self.times, self.value, self.stderr, label=label or self.method, marker="o", ms=3)
        ax.set_xlabel("t")
        ax.set_ylabel("nats")
        return ax


def _posterior_entropy(p: np.ndarray) -> np.ndarray:
    """-sum_y p log p per row, with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1)


def _onehot(model) -> np.ndarray:
    """(K, C) indicator of each component's class."""
    codes = model.components.require_labels()
    out = np.zeros((model.n_components, len(model.classes)))
    out[np.arange(codes.size), codes] = 1.0
    return out


def _labelled(model):
    if not satisfies(model, Labelled) or model.classes is None:
        raise ValueError("model must be labelled (pass labels=... when building it) to measure class information")
    require(model, ExactMixture, purpose="class information is computed from exact class posteriors")
    w = np.asarray(model.class_weights, dtype=np.float64)
    if np.any(w <= 0):
        raise ValueError("every class of the model must have positive prior weight (an empty class was found)")
    return w


def _quadrature_components_1d(model, t: float, *, rate: bool = False) -> np.ndarray:
    """E[h(X_t) | component k] (and E[dh/dt | k] with ``rate``) for a 1-D mixture.

    Vectorised adaptive Gauss-Kronrod over z ~ N(0, 1) with x = alpha mu_k + s_k z,
    s_k^2 = alpha^2 v_k + sigma^2, on [-12, 12] (the tail beyond carries < 1e-32),
    with breakpoints where the posterior switches (midpoints between means).
    The rate integrand is the exact derivative of h along that path (module
    ``_resp_rate``). Returns shape (K,) or, with ``rate``, (2, K).
    """
    from .. import _quadrature
    from .. import _resp_rate as rr

    a, ad, s, sd, da2, ds2 = rr.coefficients(model.schedule, t)
    mus, vs = model.means[:, 0], model.covariances[:, 0, 0]
    mids = np.sort(mus)
    mids = 0.5 * (mids[1:] + mids[:-1])
    onehot = _onehot(model)
    out = np.empty((2, mus.size))
    iso = model.covariance_type == "isotropic"
    mu_row = model.means.T  # (1, K)
    for k, (mu, v) in enumerate(zip(mus, vs)):
        sk = np.sqrt(a * a * v + s * s)
        skd = (da2 * v + ds2) / (2 * sk)

        def f(z, mu=mu, sk=sk, skd=skd):
            x, xd = (a * mu + sk * z)[:, None], (ad * mu + skd * z)[:, None]
            if iso:
                ell, lrate = rr.isotropic_logits_and_rates(
                    model, x @ mu_row, xd @ mu_row, x[:, 0] ** 2, x[:, 0] * xd[:, 0], t
                )
            else:
                ell, lrate = rr.generic_logits_and_rates(model, x, xd, t)
            _, _, h, hdot = rr.class_posterior_and_rate(ell, lrate, onehot)
            phi = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
            return np.stack([h * phi, hdot * phi], axis=1)

        pts = [float(z) for z in (a * mids - a * mu) / sk if -12 < z < 12] + [0.0]
        out[:, k], _ = _quadrature.integrate(f, -12.0, 12.0, points=pts)
    return out if rate else out[0]


@references("handke2025")
def conditional_entropy(
    model: ExactMixture,
    times,
    *,
    n: int = 20000,
    rng: np.random.Generator | None = None,
    method: str = "auto",
    groups=None,
    progress: bool = False,
) -> EntropyEstimate:
    """H(Y | X_t) in nats at each of ``times`` (forward times of ``model.schedule``, t > 0).

    Parameters
    ----------
    model : labelled GaussianMixture (or any model with ``sample`` and ``class_posterior``)
    times : float or (T,) array
    n : int
        Monte Carlo sample size (one set of draws shared by all times).
    rng : numpy Generator, optional
    method : {"auto", "quadrature", "monte_carlo"}
        ``auto`` uses quadrature for 1-D Gaussian mixtures of at most 32
        components, Monte Carlo otherwise.
    groups : partition of the classes, optional
        e.g. ``[[0, 1], [2, 3]]``: the entropy of the coarse decision "which group"
        (:meth:`GaussianMixture.relabel`; Handke et al. 2025).
    progress : bool
        A bar over the times (Monte Carlo only).

    Returns
    -------
    EntropyEstimate
        For Monte Carlo the standard error is std(h)/sqrt(n) of the per-draw
        posterior entropies h(x_t).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-3.0], [3.0]], 0.01, labels=[0, 1])
    >>> h = sd.conditional_entropy(gm, [0.01, 5.0], n=2000, rng=0)
    >>> bool(h.value[0] < 0.01 and abs(h.value[1] - np.log(2)) < 0.02)  # decided early, a coin late
    True
    """
    _labelled(model)
    if groups is not None:
        model = model.relabel(groups)
    ts = _checks.check_times(times, model.schedule, allow_zero=False)
    if method not in ("auto", "quadrature", "monte_carlo"):
        raise ValueError(f"method must be 'auto', 'quadrature' or 'monte_carlo', got {method!r}")
    rng = _checks.check_rng(rng)
    has_quad = model.dim == 1 and satisfies(model, ExactMixture)
    small = has_quad and model.n_components <= QUAD_MAX_COMPONENTS
    if method == "quadrature" and not has_quad:
        raise ValueError("method='quadrature' needs a 1-D Gaussian mixture")
    if method == "quadrature" or (method == "auto" and small):
        vals = np.array([model.weights @ _quadrature_components_1d(model, t) for t in ts])
        return EntropyEstimate(ts, vals, np.zeros_like(vals), "quadrature")
    n = _checks.check_positive_int(n, "n")
    x0 = model.sample(n, 0.0, rng=rng).x0
    eps = rng.standard_normal(x0.shape)
    vals, ses = np.empty(ts.size), np.empty(ts.size)
    for i, t in _progress.iterate(list(enumerate(ts)), progress, "H(Y | X_t)"):
        xt = float(model.schedule.alpha(t)) * x0 + float(model.schedule.sigma(t)) * eps
        h = _posterior_entropy(model.class_posterior(xt, t))
        vals[i], ses[i] = h.mean(), h.std(ddof=1) / np.sqrt(n)
    return EntropyEstimate(ts, vals, ses, "monte_carlo")


def mutual_information(model: ExactMixture, times, **kwargs) -> EntropyEstimate:
    """I(Y; X_t) = H(Y) - H(Y | X_t) in nats, same arguments as :func:`conditional_entropy`.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-3.0], [3.0]], 0.01, labels=[0, 1])
    >>> i = sd.mutual_information(gm, [0.01, 5.0], n=2000, rng=0)
    >>> bool(abs(i.value[0] - np.log(2)) < 0.01 and i.value[1] < 0.02)  # one bit early, nothing late
    True
    """
    if kwargs.get("groups") is not None:
        _labelled(model)
        model = model.relabel(kwargs.pop("groups"))
    w = _labelled(model)
    h_y = float(-(w * np.log(w)).sum())
    est = conditional_entropy(model, times, **kwargs)
    return EntropyEstimate(est.times, h_y - est.value, est.stderr, est.method)
