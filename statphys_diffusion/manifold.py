r"""Gaussian data on linear manifolds: x_0 = b + U z, z ~ N(0, diag(lam)).

U (d, m) has orthonormal columns spanning the tangent space. At time t,
p_t = N(alpha b, alpha^2 U diag(lam) U^T + sigma^2 I): along tangent direction
u_j the noisy variance is alpha^2 lam_j + sigma^2, along normal directions
sigma^2. The denoiser is linear,

    D_t(x) = b + U diag(alpha lam / (alpha^2 lam + sigma^2)) U^T (x - alpha b),

so its Jacobian has eigenvalue alpha lam_j / (alpha^2 lam_j + sigma^2) along
u_j and 0 normal to the manifold (Achilli et al. 2024, "Losing dimensions",
the exact reference for geometric memorization). Inversions go through the
eigenbasis (O(d m) per point, never a d x d inverse).
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .mixture import GaussianMixture
from .schedules import Schedule

__all__ = ["LinearManifold"]


class LinearManifold(GaussianMixture):
    """A Gaussian on the affine subspace b + span(U); a one-component low-rank mixture.

    Parameters
    ----------
    basis : array_like, shape (d, m)
        Orthonormal columns (U^T U = I, checked to 1e-8).
    variances : array_like, shape (m,)
        Per-direction variances lam_j > 0.
    offset : array_like, shape (d,), optional (default 0)
    noise_var : float, optional
        Isotropic variance added off the manifold (default 0: exact manifold, t > 0 needed).
    schedule : Schedule, optional

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> basis, lam = np.eye(4)[:, :2], np.array([2.0, 0.5])  # a plane in 4 dimensions
    >>> lm = sd.LinearManifold(basis, lam)
    >>> t, x = 0.5, np.array([[0.3, -1.0, 0.2, 0.4]])
    >>> a2, s2 = float(lm.schedule.alpha(t)) ** 2, float(lm.schedule.sigma2(t))
    >>> cov = a2 * basis @ np.diag(lam) @ basis.T + s2 * np.eye(4)  # p_t = N(0, alpha^2 U L U^T + sigma^2 I)
    >>> bool(np.allclose(lm.score(x, t), -np.linalg.solve(cov, x.T).T))
    True
    """

    def __init__(self, basis, variances, offset=None, *, noise_var: float = 0.0, schedule: Schedule | None = None):
        u = _checks.as_float_array(basis, "basis", dtype=np.float64, ndim=2)
        d, m = u.shape
        lam = _checks.as_float_array(variances, "variances", dtype=np.float64, ndim=1)
        if lam.shape != (m,):
            raise ValueError(f"variances must have shape ({m},) to match basis (d, m) = {u.shape}, got {lam.shape}")
        if np.any(lam <= 0):
            raise ValueError("variances must be positive")
        b = np.zeros(d) if offset is None else _checks.as_float_array(offset, "offset", dtype=np.float64, ndim=1)
        if b.shape != (d,):
            raise ValueError(f"offset must have shape ({d},), got {b.shape}")
        if not (np.isfinite(noise_var) and noise_var >= 0):
            raise ValueError("noise_var must be a non-negative finite number")
        super().__init__(
            b[None, :], (u[None], lam[None], np.array([float(noise_var)])), covariance_type="lowrank", schedule=schedule
        )

    @property
    def basis(self) -> np.ndarray:
        """Tangent basis U, shape (d, m)."""
        return self._cov.basis[0].copy()

    @property
    def variances(self) -> np.ndarray:
        return self._cov.lam[0].copy()

    @property
    def offset(self) -> np.ndarray:
        return self._means[0].copy()

    @property
    def intrinsic_dim(self) -> int:
        return self._cov.basis.shape[2]

    def denoiser_jacobian_eigenvalues(self, t) -> np.ndarray:
        """Eigenvalues alpha lam_j / (alpha^2 lam_j + sigma^2 + alpha^2 v) along u_j, shape (m,)."""
        t = _checks.check_time(t, self.schedule, allow_zero=not self.singular)
        a = float(self.schedule.alpha(t))
        s2 = float(self.schedule.sigma2(t))
        lam = self._cov.lam[0]
        v = self._cov.var[0]
        return a * lam / (a * a * (lam + v) + s2)

    @staticmethod
    def mixture(manifolds, weights=None, *, labels=None, schedule: Schedule | None = None) -> GaussianMixture:
        """A mixture of linear manifolds as one low-rank :class:`GaussianMixture`.

        Manifolds of lower intrinsic dimension are padded to the largest one
        with orthonormal directions of zero variance (same distribution).
        The schedule defaults to that of the first manifold.
        """
        manifolds = list(manifolds)
        if not manifolds or not all(isinstance(m, LinearManifold) for m in manifolds):
            raise ValueError("manifolds must be a non-empty sequence of LinearManifold")
        d = manifolds[0].dim
        if any(m.dim != d for m in manifolds):
            raise ValueError("manifolds must all have the same ambient dimension d")
        m_max = max(m.intrinsic_dim for m in manifolds)
        bases, lams = [], []
        for man in manifolds:
            u, lam = man.basis, man.variances
            if u.shape[1] < m_max:
                # orthonormal completion: QR of [U, random], keeping U's span first
                extra = np.random.default_rng(0).standard_normal((d, m_max - u.shape[1]))
                extra -= u @ (u.T @ extra)
                q, _ = np.linalg.qr(extra)
                u = np.concatenate([u, q], axis=1)
                lam = np.concatenate([lam, np.zeros(m_max - lam.size)])
            bases.append(u)
            lams.append(lam)
        return GaussianMixture(
            np.stack([m.offset for m in manifolds]),
            (np.stack(bases), np.stack(lams), np.array([m._cov.var[0] for m in manifolds])),
            weights,
            covariance_type="lowrank",
            labels=labels,
            schedule=manifolds[0].schedule if schedule is None else schedule,
        )

    @staticmethod
    @_checks.keyword_rng(3)
    def random(
        d: int, m: int, variances, *, rng: np.random.Generator | int | None = None, schedule: Schedule | None = None
    ):
        """A manifold with a uniformly random (Haar) orthonormal basis."""
        d = _checks.check_positive_int(d, "d")
        m = _checks.check_positive_int(m, "m")
        if m > d:
            raise ValueError(f"m must be <= d, got m={m}, d={d}")
        rng = _checks.check_rng(rng)
        q, r = np.linalg.qr(rng.standard_normal((d, m)))
        q = q * np.sign(np.diag(r))[None, :]
        return LinearManifold(q, variances, schedule=schedule)
