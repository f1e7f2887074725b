r"""Geometric memorisation: the denoiser's Jacobian on tangent and normal directions (result 4).

Achilli, Ventura, Silvestri, Pham, Raya, Krotov, Lucibello & Ambrogioni, "Losing
dimensions: geometric memorization in generative diffusion" (arXiv 2410.08727)
read the latent dimension of a model off the spectrum of its denoiser's
Jacobian at small t. By Tweedie's formula that Jacobian is a posterior covariance,

    J_t(x) = d D_t / d x = (alpha_t / sigma_t^2) Cov[x_0 | x_t = x] = (I + sigma_t^2 H_t(x)) / alpha_t,

with H_t the Hessian of log p_t. For Gaussian data on a linear manifold with
tangent variances lambda_k (exact model) u_k^T J u_k = alpha lambda_k /
(alpha^2 lambda_k + sigma^2) and J vanishes on normal directions; the exact
empirical model of N points has the posterior covariance of its weights r_i(x)
instead, sum_i r_i (y_i - D)(y_i - D)^T, which loses tangent directions once
few points carry the weight. :func:`tangent_jacobian` measures the projections
for any denoiser (exact Hessian-vector products when the model has ``hvp``,
central differences of ``denoise`` otherwise); ``ratio`` against the exact
manifold model says which directions a model retains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks

__all__ = ["TangentJacobian", "tangent_jacobian"]


@dataclass(frozen=True)
class TangentJacobian:
    """Jacobian of a denoiser projected on a tangent basis, per query point.

    Attributes
    ----------
    t : float
    tangent : (M, m) u_k^T J u_k at each query
    normal : (M,) mean of v^T J v over unit normal directions (Hutchinson estimate)
    """

    t: float
    tangent: np.ndarray
    normal: np.ndarray

    @property
    def mean_tangent(self) -> np.ndarray:
        return self.tangent.mean(axis=0)

    def ratio(self, reference: np.ndarray) -> np.ndarray:
        """Mean tangent projections divided by ``reference`` (m,), e.g. the exact manifold's eigenvalues."""
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != (self.tangent.shape[1],):
            raise ValueError(f"reference must have shape ({self.tangent.shape[1]},), got {ref.shape}")
        return self.mean_tangent / ref

    def retained(self, reference: np.ndarray, level: float = 0.5) -> int:
        """Tangent directions whose mean projection is at least ``level`` times the reference."""
        return int(np.sum(self.ratio(reference) >= level))


def _jvp(model, x: np.ndarray, t: float, v: np.ndarray) -> np.ndarray:
    """J_t(x) v for rows of x and v."""
    sch = getattr(model, "schedule", None)
    if hasattr(model, "hvp") and sch is not None:
        a, s2 = float(sch.alpha(t)), float(sch.sigma2(t))
        return (v + s2 * model.hvp(x, t, v)) / a
    h = 1e-4 * (1.0 + np.linalg.norm(x, axis=1, keepdims=True))
    return (np.asarray(model.denoise(x + h * v, t)) - np.asarray(model.denoise(x - h * v, t))) / (2 * h)


def tangent_jacobian(
    model, t: float, x, basis, *, n_normal_probes: int = 8, rng: np.random.Generator | None = None
) -> TangentJacobian:
    """u_k^T J_t(x) u_k for each tangent direction u_k (columns of ``basis``) at each point x.

    Parameters
    ----------
    model : object with ``denoise(x, t)`` (and optionally ``hvp`` and ``schedule``)
    t : float
    x : (M, d) noisy query points x_t
    basis : (d, m) orthonormal tangent basis
    n_normal_probes : int
        Random unit vectors in the normal space for the mean normal projection (0 skips it).
    rng : numpy Generator, optional
    """
    if not hasattr(model, "denoise"):
        raise ValueError("model must have a `denoise(x, t)` method")
    sch = getattr(model, "schedule", None)
    t = float(_checks.check_time(t, sch, "t", allow_zero=False)) if sch is not None else float(t)
    u = _checks.as_float_array(basis, "basis", dtype=np.float64, ndim=2)
    d, m = u.shape
    if m > d or np.abs(u.T @ u - np.eye(m)).max() > 1e-8:
        raise ValueError("basis must have orthonormal columns (U^T U = I), shape (d, m) with m <= d")
    xq = _checks.as_points(x, d, "x").astype(np.float64, copy=False)
    rng = np.random.default_rng(0) if rng is None else rng
    if isinstance(n_normal_probes, bool) or int(n_normal_probes) != n_normal_probes or n_normal_probes < 0:
        raise ValueError(f"n_normal_probes must be a non-negative integer, got {n_normal_probes!r}")
    tan = np.empty((xq.shape[0], m))
    for k in range(m):
        v = np.broadcast_to(u[:, k], xq.shape).copy()
        tan[:, k] = np.einsum("ij,ij->i", _jvp(model, xq, t, v), v)
    normal = np.full(xq.shape[0], np.nan)
    if n_normal_probes > 0 and m < d:
        acc = np.zeros(xq.shape[0])
        for _ in range(int(n_normal_probes)):
            v = rng.standard_normal(xq.shape)
            v -= (v @ u) @ u.T
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            acc += np.einsum("ij,ij->i", _jvp(model, xq, t, v), v)
        normal = acc / n_normal_probes
    return TangentJacobian(t=t, tangent=tan, normal=normal)
