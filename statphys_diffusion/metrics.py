"""Sample-quality metrics against exact references.

``sliced_wasserstein``: the sliced 1-Wasserstein distance (Rabin et al. 2011;
Bonneel et al. 2015), SW_1(P, Q) = E_u[W_1(u.P, u.Q)] over uniformly random
unit directions u, estimated with ``n_projections`` directions. For 1-D
projections with equal sample sizes W_1 is the mean absolute difference of the
sorted samples; with unequal sizes the quantile functions are compared on a
common grid.
"""

from __future__ import annotations

import numpy as np

from . import _checks

__all__ = ["frechet_distance", "frechet_distance_gaussian", "sliced_wasserstein", "wasserstein_1d"]


def wasserstein_1d(a, b) -> float:
    """W_1 between two 1-D samples (exact: integral of |F_a^{-1} - F_b^{-1}|).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> a = np.random.default_rng(0).standard_normal(500)
    >>> round(sd.wasserstein_1d(a, a + 2.0), 12)  # a shift moves every quantile by 2
    2.0
    """
    a = np.sort(_checks.as_float_array(a, "a", ndim=1))
    b = np.sort(_checks.as_float_array(b, "b", ndim=1))
    if a.size == 0 or b.size == 0:
        raise ValueError("a and b must be non-empty")
    if a.size == b.size:
        return float(np.mean(np.abs(a - b)))
    # piecewise-constant quantile functions on the union of their breakpoints
    qa = np.arange(1, a.size + 1) / a.size
    qb = np.arange(1, b.size + 1) / b.size
    q = np.union1d(qa, qb)
    widths = np.diff(np.concatenate([[0.0], q]))
    ia = np.minimum(np.searchsorted(qa, q - 1e-15), a.size - 1)
    ib = np.minimum(np.searchsorted(qb, q - 1e-15), b.size - 1)
    return float(np.sum(widths * np.abs(a[ia] - b[ib])))


def sliced_wasserstein(x, y, n_projections: int = 128, rng: np.random.Generator | None = None) -> float:
    """Sliced 1-Wasserstein distance between samples x (n, d) and y (m, d).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> x = np.random.default_rng(0).standard_normal((300, 3))
    >>> sd.sliced_wasserstein(x, x, rng=np.random.default_rng(1))
    0.0
    >>> sd.sliced_wasserstein(x, x + 1.0, rng=np.random.default_rng(1)) > 0.5
    True
    """
    x = _checks.as_float_array(x, "x", ndim=2)
    y = _checks.as_float_array(y, "y", ndim=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    n_projections = _checks.check_positive_int(n_projections, "n_projections")
    rng = _checks.check_rng(rng)
    u = rng.standard_normal((n_projections, x.shape[1]))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    px, py = x @ u.T, y @ u.T
    return float(np.mean([wasserstein_1d(px[:, j], py[:, j]) for j in range(n_projections)]))


def frechet_distance_gaussian(mu1, cov1, mu2, cov2) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2).

    |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1^{1/2} cov2 cov1^{1/2})^{1/2}) (Dowson & Landau
    1982; the FID of Heusel et al. 2017 in whatever feature space the moments come from).
    The matrix square roots go through symmetric eigendecompositions, so the result is
    real and non-negative up to rounding.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> # |mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)): here 1 + 2 (1 + 4 - 2 * 2)
    >>> round(sd.frechet_distance_gaussian([0.0, 0.0], np.eye(2), [1.0, 0.0], 4 * np.eye(2)), 10)
    3.0
    """
    mu1 = _checks.as_float_array(mu1, "mu1", dtype=np.float64, ndim=1)
    mu2 = _checks.as_float_array(mu2, "mu2", dtype=np.float64, ndim=1)
    c1 = _checks.as_float_array(cov1, "cov1", dtype=np.float64, ndim=2)
    c2 = _checks.as_float_array(cov2, "cov2", dtype=np.float64, ndim=2)
    d = mu1.size
    if mu2.shape != (d,) or c1.shape != (d, d) or c2.shape != (d, d):
        raise ValueError(
            f"need means (d,) and covariances (d, d) of one d, got {mu1.shape}, {mu2.shape}, {c1.shape}, {c2.shape}"
        )

    def psd_sqrt(m):
        w, v = np.linalg.eigh(0.5 * (m + m.T))
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    r1 = psd_sqrt(c1)
    cross = psd_sqrt(r1 @ c2 @ r1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(cross))


def frechet_distance(feat_a, feat_b) -> float:
    """Frechet distance between the Gaussian fits of two feature samples (n, k) and (m, k).

    Reported by this package as FD_own when the features are those of its own
    classifier (:func:`statphys_diffusion.nets.classifier.features`): Inception
    weights are not available here, so it is not comparable with published FIDs.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> y = np.random.default_rng(0).standard_normal((200, 4))
    >>> sd.frechet_distance(y, y)
    0.0
    """
    a = _checks.as_float_array(feat_a, "feat_a", dtype=np.float64, ndim=2)
    b = _checks.as_float_array(feat_b, "feat_b", dtype=np.float64, ndim=2)
    if a.shape[1] != b.shape[1] or a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"need two samples of >= 2 rows with the same width, got {a.shape} and {b.shape}")
    return frechet_distance_gaussian(
        a.mean(0), np.cov(a.T).reshape(a.shape[1], -1), b.mean(0), np.cov(b.T).reshape(b.shape[1], -1)
    )
