r"""Property-testing helpers for users who check their own formulas (needs ``hypothesis``).

Strategies
----------
``schedules()``            every schedule kind with random parameters
``times(schedule)``        times whose log-snr lies in a given window
``gaussian_mixtures()``    mixtures of each covariance kind, optionally labelled
``linear_manifolds()``     Gaussian data on random linear subspaces

Checkers (raise ``AssertionError`` with the worst offender; return the max error)
------------------------------------------------------------------------------
``check_score``        score against central finite differences of ``log_prob``
``check_hessian``      Hessian against central finite differences of ``score``
``check_tweedie``      ``denoise`` against (x + sigma^2 score) / alpha
``check_posteriors``   rows sum to 1 and agree with Bayes' rule from dense
                       per-component Gaussian densities (scipy)

Tolerances. Central differences with step h have truncation error
O(h^2 |f'''|) and rounding error O(eps |f| / h). The step is taken relative
to the smallest noisy standard deviation ``length`` of the model (h = 1e-4 *
length by default), so both terms are ~1e-8 relative to the natural scale of
the derivative (1/length for the score, 1/length^2 for the Hessian); the
default ``rtol = 1e-5`` leaves a margin of 100 while still catching any wrong
term (a wrong factor or sign is an O(1) relative error).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from scipy.special import logsumexp

from .mixture import GaussianMixture
from .schedules import VPSDE, DiscreteSchedule, FlowMatching, OrnsteinUhlenbeck, VarianceExploding

__all__ = [
    "schedules",
    "times",
    "gaussian_mixtures",
    "linear_manifolds",
    "noisy_length",
    "check_score",
    "check_hessian",
    "check_tweedie",
    "check_posteriors",
    "reference_component_log_densities",
]

_DISCRETE: dict[tuple[str, int], DiscreteSchedule] = {}


def _discrete(kind: str, n: int) -> DiscreteSchedule:
    key = (kind, n)
    if key not in _DISCRETE:
        _DISCRETE[key] = DiscreteSchedule.linear(n) if kind == "linear" else DiscreteSchedule.cosine(n)
    return _DISCRETE[key]


@st.composite
def schedules(draw, kinds=("ou", "vpsde", "linear", "cosine", "ve", "flow")):
    """A schedule of one of ``kinds`` (random beta range for the VP-SDE)."""
    kind = draw(st.sampled_from(kinds))
    if kind == "ou":
        return OrnsteinUhlenbeck()
    if kind == "vpsde":
        b0 = draw(st.floats(0.05, 1.0))
        b1 = draw(st.floats(5.0, 30.0))
        return VPSDE(b0, b1)
    if kind in ("linear", "cosine"):
        return _discrete(kind, draw(st.sampled_from([100, 1000])))
    if kind == "ve":
        return VarianceExploding(sigma_max=100.0)
    return FlowMatching()


@st.composite
def times(draw, schedule, log_snr_range=(-5.0, 7.0)):
    """A time whose log-snr lies in ``log_snr_range`` (clipped to the schedule's range)."""
    lo_t = schedule.t_min if np.isfinite(schedule.t_min) else 0.0
    hi_t = schedule.default_t_start
    lmax = min(log_snr_range[1], float(schedule.log_snr(lo_t + 1e-12 * max(1.0, hi_t))))
    lmin = max(log_snr_range[0], float(schedule.log_snr(hi_t)))
    ls = draw(st.floats(lmin, lmax)) if lmax > lmin else lmin
    return float(np.clip(schedule.t_of_snr(np.exp(ls)), schedule.t_min, schedule.t_max))


@st.composite
def _spd(draw, d: int, lo: float = 0.05, hi: float = 2.0):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    ev = np.exp(rng.uniform(np.log(lo), np.log(hi), d))
    return (q * ev) @ q.T


@st.composite
def gaussian_mixtures(
    draw,
    dim=st.integers(1, 4),
    n_components=st.integers(1, 4),
    covariance_type=st.sampled_from(["isotropic", "diagonal", "full", "lowrank"]),
    labelled: bool | None = None,
    degenerate: bool = False,
    schedule=None,
):
    """A random :class:`GaussianMixture`.

    ``dim``, ``n_components`` and ``covariance_type`` are strategies (or plain
    values). ``degenerate=True`` allows zero variances (point masses, flat
    directions); ``labelled=None`` draws labels half the time.
    """

    def val(s):
        return draw(s) if isinstance(s, st.SearchStrategy) else s

    d, k, kind = val(dim), val(n_components), val(covariance_type)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    means = rng.uniform(-2.0, 2.0, (k, d))
    weights = rng.dirichlet(np.full(k, 2.0))
    vlo = 0.0 if degenerate else 0.05
    if kind == "isotropic":
        cov = rng.uniform(vlo, 1.5, k)
    elif kind == "diagonal":
        cov = rng.uniform(vlo, 1.5, (k, d))
    elif kind == "full":
        cov = np.stack([draw(_spd(d)) for _ in range(k)])
    else:
        m = int(rng.integers(1, d + 1))
        basis = np.stack([np.linalg.qr(rng.standard_normal((d, m)))[0] for _ in range(k)])
        cov = (basis, rng.uniform(0.1, 2.0, (k, m)), rng.uniform(vlo, 0.5, k))
    if labelled is None:
        labelled = draw(st.booleans())
    labels = rng.integers(0, max(1, min(k, 3)), k) if labelled else None
    sch = draw(schedules()) if schedule is None else val(schedule)
    return GaussianMixture(means, cov, weights, covariance_type=kind, labels=labels, schedule=sch)


@st.composite
def linear_manifolds(draw, dim=st.integers(2, 12), schedule=None):
    """A :class:`LinearManifold` with random basis, intrinsic dim 1..d-1 and variances in [0.1, 4]."""
    from .manifold import LinearManifold

    d = draw(dim) if isinstance(dim, st.SearchStrategy) else dim
    m = draw(st.integers(1, max(1, d - 1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sch = draw(schedules()) if schedule is None else schedule
    return LinearManifold.random(d, m, rng.uniform(0.1, 4.0, m), rng=rng, schedule=sch)


def noisy_length(model, t: float) -> float:
    """The finite-difference scale at t: the smallest standard deviation of any noisy component.

    For a model with the public component view (``components``: Gaussian mixtures, empirical
    models, linear manifolds) it is read from the covariances; for any other object with a
    ``schedule`` it is sigma_t, a lower bound for every noisy density (x_t = alpha x_0 + sigma eps
    smooths at least on the scale sigma_t). Pass ``length=`` to the checkers to choose another.
    """
    if not hasattr(model, "schedule"):
        raise ValueError(f"model must have a `schedule` (or pass length=...), got {type(model).__name__}")
    a2 = float(model.schedule.alpha(t)) ** 2
    s2 = float(model.schedule.sigma2(t))
    comps = getattr(model, "components", None)
    cov = getattr(comps, "covariance", None)
    if cov is None:
        if not s2 > 0:
            raise ValueError(f"sigma_t = 0 at t={t}: pass length=... (the finite-difference scale)")
        return float(np.sqrt(s2))
    if cov.kind in ("isotropic", "diagonal"):
        smallest = float(np.min(cov.var))
    else:
        candidates = [np.min(cov.lam + cov.var[:, None])]
        if cov.basis.shape[2] < cov.d:
            candidates.append(np.min(cov.var))
        smallest = float(min(candidates))
    return float(np.sqrt(a2 * smallest + s2))


def _fd_grad(fn, x, h):
    d = x.shape[1]
    cols = []
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        cols.append((fn(x + e) - fn(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)


def _report(name, err, scale, rtol, x=None, t=None, tol_name="rtol"):
    """The largest err / scale; an AssertionError naming the worst point, the time and the tolerance."""
    rel = np.asarray(err / scale, dtype=np.float64)
    rel = rel.reshape(rel.shape[0], -1).max(axis=1) if rel.ndim > 1 else rel
    bad = ~np.isfinite(rel)
    i = int(np.argmax(np.where(bad, np.inf, rel)))
    worst = float("nan") if bad.any() else float(rel[i])
    if bad.any() or not worst <= rtol:
        where = ""
        if x is not None:
            pt = np.asarray(x)[i]
            shown = np.array2string(pt[:8], precision=6, separator=", ") + (" ..." if pt.size > 8 else "")
            where = f" at point {i} of {len(rel)}, x = {shown}"
        when = "" if t is None else f", t = {t:g}"
        raise AssertionError(
            f"{name}: relative error {worst:.3g}{where}{when} exceeds {tol_name}={rtol:g}"
            + (" (non-finite values)" if bad.any() else "")
        )
    return worst


def _points(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"x must have shape (M, d) or (d,), got {x.shape}")
    return x


def _needs(model, *members: str) -> None:
    missing = [m for m in members if not callable(getattr(model, m, None))]
    if missing:
        raise ValueError(f"model must have {', '.join(f'`{m}`' for m in missing)} to be checked here")


def check_score(model, x, t, *, rtol: float = 1e-5, rel_step: float = 1e-4, length: float | None = None) -> float:
    """Compare ``model.score`` with central differences of ``model.log_prob``.

    Works on any object with ``score(x, t)`` and ``log_prob(x, t)`` (and a ``schedule``, unless
    ``length`` is given). The error is measured relative to |s| + 1/length (``length`` defaults
    to :func:`noisy_length`); on failure the AssertionError names the worst point, t and rtol.
    """
    _needs(model, "score", "log_prob")
    x = _points(x)
    ell = noisy_length(model, t) if length is None else length
    h = rel_step * ell
    fd = _fd_grad(lambda y: np.asarray(model.log_prob(y, t), dtype=np.float64), x, h)
    s = np.asarray(model.score(x, t), dtype=np.float64)
    scale = np.abs(s).max(axis=1, keepdims=True) + 1.0 / ell
    return _report("score vs finite differences of log_prob", np.abs(s - fd), scale, rtol, x, t)


def check_hessian(model, x, t, *, rtol: float = 1e-5, rel_step: float = 1e-4, length: float | None = None) -> float:
    """Compare ``model.hessian`` with central differences of ``model.score`` (relative to |H| + 1/length^2)."""
    _needs(model, "score", "hessian")
    x = _points(x)
    ell = noisy_length(model, t) if length is None else length
    h = rel_step * ell
    fd = _fd_grad(lambda y: np.asarray(model.score(y, t), dtype=np.float64), x, h)
    H = np.asarray(model.hessian(x, t), dtype=np.float64)
    scale = np.abs(H).max(axis=(1, 2))[:, None, None] + 1.0 / ell**2
    return _report("hessian vs finite differences of score", np.abs(H - fd), scale, rtol, x, t)


def check_tweedie(model, x, t, *, rtol: float = 1e-8) -> float:
    """``denoise(x, t)`` against Tweedie's formula (x + sigma^2 s) / alpha (Efron 2011).

    Relative to |D| + |x| / alpha, the size of the terms that cancel.
    """
    _needs(model, "score", "denoise")
    x = _points(x)
    a = float(model.schedule.alpha(t))
    s2 = float(model.schedule.sigma2(t))
    ref = (x + s2 * np.asarray(model.score(x, t), dtype=np.float64)) / a
    den = np.asarray(model.denoise(x, t), dtype=np.float64)
    scale = np.abs(den).max(axis=1, keepdims=True) + np.abs(x).max(axis=1, keepdims=True) / a + 1e-300
    return _report("denoise vs Tweedie", np.abs(den - ref), scale, rtol, x, t)


def reference_component_log_densities(model: GaussianMixture, x, t) -> np.ndarray:
    """log pi_k + log N(x; alpha mu_k, alpha^2 Sigma_k + sigma^2 I) from dense matrices, shape (M, K).

    Independent of the package's kernels: dense covariances and Cholesky
    factorisations, for small d.
    """
    x = np.asarray(x, dtype=np.float64)
    a = float(model.schedule.alpha(t))
    s2 = float(model.schedule.sigma2(t))
    covs = model.covariances
    d = model.dim
    out = np.empty((x.shape[0], model.n_components))
    with np.errstate(divide="ignore"):
        logw = np.log(model.weights)
    for k in range(model.n_components):
        S = a * a * covs[k] + s2 * np.eye(d)
        L = np.linalg.cholesky(S)
        z = np.linalg.solve(L, (x - a * model.means[k]).T)
        out[:, k] = logw[k] - 0.5 * (d * np.log(2 * np.pi) + 2 * np.log(np.diag(L)).sum() + (z * z).sum(axis=0))
    return out


def check_posteriors(model: GaussianMixture, x, t, *, atol: float = 1e-10) -> float:
    """Component and class posteriors sum to 1 and equal Bayes' rule on dense densities; log_prob too."""
    logc = reference_component_log_densities(model, x, t)
    ref_lse = logsumexp(logc, axis=1)
    ref_r = np.exp(logc - ref_lse[:, None])
    r = model.component_posterior(x, t)
    errs = [np.abs(r.sum(axis=1) - 1).max(), np.abs(r - ref_r).max()]
    lp = model.log_prob(x, t)
    errs.append(float(np.max(np.abs(lp - ref_lse) / (1 + np.abs(ref_lse)))))
    classes, labels = model.classes, model.labels
    if classes is not None and labels is not None:
        cp = model.class_posterior(x, t)
        codes = np.searchsorted(classes, labels)
        ref_c = np.stack([ref_r[:, codes == c].sum(axis=1) for c in range(len(classes))], axis=1)
        errs += [np.abs(cp.sum(axis=1) - 1).max(), np.abs(cp - ref_c).max()]
    worst = float(max(errs))
    if not worst <= atol:
        raise AssertionError(f"posteriors: max error {worst:.3g} exceeds atol={atol:g}")
    return worst
