r"""Component covariances of a Gaussian mixture and their noisy versions.

Every kind is stored so that the noisy covariance
S_k(t) = alpha_t^2 Sigma_k + sigma_t^2 I is cheap to invert at any t:

- ``isotropic``: Sigma_k = v_k I, S_k = (a^2 v_k + s^2) I.
- ``diagonal``: Sigma_k = diag(v_k), S_k = diag(a^2 v_k + s^2).
- ``lowrank``: Sigma_k = U_k diag(lam_k) U_k^T + v_k I with U_k (d, m)
  orthonormal. With c = a^2 v_k + s^2,
  S_k^{-1} = U diag(1 / (a^2 lam + c)) U^T + (I - U U^T) / c and
  log det S_k = sum log(a^2 lam + c) + (d - m) log c: O(d m) per point,
  never a d x d inverse (the Woodbury identity written in the eigenbasis).
- ``full``: stored through its eigendecomposition, i.e. ``lowrank`` with
  m = d and v = 0, so the (I - U U^T)/c term vanishes and t = 0 is allowed.
"""

from __future__ import annotations

import numpy as np

KINDS = ("isotropic", "diagonal", "full", "lowrank")


class CovarianceSet:
    """The K component covariances of a mixture (internal)."""

    def __init__(self, kind: str, d: int, *, var=None, basis=None, lam=None):
        self.kind = kind
        self.d = d
        self.var = var  # (K,) for isotropic/lowrank, (K, d) for diagonal
        self.basis = basis  # (K, d, m) for lowrank/full
        self.lam = lam  # (K, m)

    # -- construction ---------------------------------------------------------
    @classmethod
    def build(cls, kind: str, covariances, k: int, d: int, name: str = "covariances") -> CovarianceSet:
        from ._checks import as_float_array, check_choice

        check_choice(kind, KINDS, "covariance_type")
        if kind in ("isotropic", "diagonal"):
            v = as_float_array(covariances, name, dtype=np.float64)
            shape = (k,) if kind == "isotropic" else (k, d)
            if kind == "isotropic" and v.ndim == 0:
                v = np.full(k, float(v))
            if v.shape != shape:
                raise ValueError(f"{name} must have shape {shape} for {kind} components, got {v.shape}")
            if np.any(v < 0):
                raise ValueError(f"{name} must be non-negative (variances)")
            return cls(kind, d, var=v)
        if kind == "full":
            c = as_float_array(covariances, name, dtype=np.float64)
            if c.shape != (k, d, d):
                raise ValueError(f"{name} must have shape ({k}, {d}, {d}) for full components, got {c.shape}")
            scale = np.maximum(np.abs(c).max(axis=(1, 2)), 1e-300)
            if np.any(np.abs(c - np.swapaxes(c, 1, 2)).max(axis=(1, 2)) > 1e-10 * scale):
                raise ValueError(f"{name} must be symmetric")
            lam, u = np.linalg.eigh(0.5 * (c + np.swapaxes(c, 1, 2)))
            if np.any(lam <= 1e-12 * scale[:, None]):
                raise ValueError(
                    f"{name} must be positive definite (smallest eigenvalue {float(lam.min())!r}); "
                    "use covariance_type='lowrank' for degenerate components"
                )
            return cls(kind, d, var=np.zeros(k), basis=u, lam=lam)
        # lowrank: (basis (K, d, m), lam (K, m), var (K,))
        try:
            basis, lam, var = covariances
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must be a tuple (basis (K, d, m), variances (K, m), noise_var (K,)) for lowrank"
            ) from None
        u = as_float_array(basis, f"{name}[0] (basis)", dtype=np.float64)
        if u.ndim != 3 or u.shape[:2] != (k, d) or u.shape[2] > d:
            raise ValueError(f"{name}[0] (basis) must have shape ({k}, {d}, m) with m <= {d}, got {u.shape}")
        m = u.shape[2]
        gram = np.einsum("kdi,kdj->kij", u, u)
        if np.any(np.abs(gram - np.eye(m)) > 1e-8):
            raise ValueError(f"{name}[0] (basis) must have orthonormal columns (U^T U = I)")
        lam_a = as_float_array(lam, f"{name}[1] (variances)", dtype=np.float64)
        if lam_a.shape != (k, m):
            raise ValueError(f"{name}[1] (variances) must have shape ({k}, {m}), got {lam_a.shape}")
        if np.any(lam_a < 0):
            raise ValueError(f"{name}[1] (variances) must be non-negative")
        v = as_float_array(var, f"{name}[2] (noise_var)", dtype=np.float64)
        v = np.broadcast_to(v, (k,)).copy() if v.ndim == 0 else v
        if v.shape != (k,) or np.any(v < 0):
            raise ValueError(f"{name}[2] (noise_var) must be non-negative with shape ({k},)")
        return cls("lowrank", d, var=v, basis=u, lam=lam_a)

    # -- properties -------------------------------------------------------------
    @property
    def singular(self) -> bool:
        """True if some Sigma_k is singular, so p_0 has no density (t must be > 0)."""
        if self.kind in ("isotropic", "diagonal"):
            return bool(np.any(self.var == 0))
        if self.kind == "full":
            return False
        m = self.basis.shape[2]
        return bool(np.any((self.var == 0) & ((m < self.d) | np.any(self.lam == 0, axis=1))))

    def dense(self) -> np.ndarray:
        """Dense Sigma_k, shape (K, d, d)."""
        k, d = self.var.shape[0], self.d
        if self.kind == "isotropic":
            return self.var[:, None, None] * np.eye(d)[None]
        if self.kind == "diagonal":
            out = np.zeros((k, d, d))
            idx = np.arange(d)
            out[:, idx, idx] = self.var
            return out
        u = self.basis
        return np.einsum("kdm,km,kem->kde", u, self.lam, u) + self.var[:, None, None] * np.eye(d)[None]

    def traces(self) -> np.ndarray:
        """tr Sigma_k, shape (K,) (orthonormal bases: tr(U diag(lam) U^T + v I) = sum lam + d v)."""
        if self.kind == "isotropic":
            return self.d * self.var
        if self.kind == "diagonal":
            return self.var.sum(axis=1)
        return self.lam.sum(axis=1) + self.d * self.var

    def astype_kind_full(self) -> CovarianceSet:
        """The same covariances as a dense ``full`` set (for tests and small d)."""
        return CovarianceSet.build("full", self.dense(), self.var.shape[0], self.d)

    # -- noisy covariance at (a^2, s^2) ----------------------------------------
    def logdet(self, a2: float, s2: float) -> np.ndarray:
        """log det S_k, shape (K,)."""
        d = self.d
        with np.errstate(divide="ignore"):
            if self.kind == "isotropic":
                return d * np.log(a2 * self.var + s2)
            if self.kind == "diagonal":
                return np.log(a2 * self.var + s2).sum(axis=1)
            c = a2 * self.var + s2
            m = self.basis.shape[2]
            out = np.log(a2 * self.lam + c[:, None]).sum(axis=1)
            if m < d:
                out = out + (d - m) * np.log(c)
            return out

    def dlogdet(self, a2: float, s2: float) -> tuple[np.ndarray, np.ndarray]:
        """Partial derivatives of log det S_k: (tr(S_k^{-1} Sigma_k), tr(S_k^{-1})), each (K,).

        d/dt log det S_k = (a^2)' tr(S_k^{-1} Sigma_k) + (s^2)' tr(S_k^{-1}) (Jacobi's formula).
        """
        d = self.d
        if self.kind == "isotropic":
            c = a2 * self.var + s2
            return d * self.var / c, d / c
        if self.kind == "diagonal":
            c = a2 * self.var + s2
            return (self.var / c).sum(axis=1), (1.0 / c).sum(axis=1)
        c = a2 * self.var + s2
        e = a2 * self.lam + c[:, None]
        t1 = ((self.lam + self.var[:, None]) / e).sum(axis=1)
        t2 = (1.0 / e).sum(axis=1)
        m = self.basis.shape[2]
        if m < d:
            t1 = t1 + (d - m) * self.var / c
            t2 = t2 + (d - m) / c
        return t1, t2

    def quad_cov(self, k: int, g: np.ndarray) -> np.ndarray:
        """Row-wise g^T Sigma_k g for rows g of shape (M, d)."""
        if self.kind == "isotropic":
            return self.var[k] * np.einsum("ij,ij->i", g, g)
        if self.kind == "diagonal":
            return np.einsum("ij,j,ij->i", g, self.var[k], g)
        proj = g @ self.basis[k]
        return np.einsum("ij,j,ij->i", proj, self.lam[k], proj) + self.var[k] * np.einsum("ij,ij->i", g, g)

    def subset(self, idx: np.ndarray) -> CovarianceSet:
        """The covariances of components ``idx`` only."""
        return CovarianceSet(
            self.kind,
            self.d,
            var=self.var[idx],
            basis=None if self.basis is None else self.basis[idx],
            lam=None if self.lam is None else self.lam[idx],
        )

    def apply_prec(self, k: int, y: np.ndarray, a2: float, s2: float) -> np.ndarray:
        """S_k^{-1} y for rows y of shape (M, d)."""
        if self.kind == "isotropic":
            return y / (a2 * self.var[k] + s2)
        if self.kind == "diagonal":
            return y / (a2 * self.var[k] + s2)
        u = self.basis[k].astype(y.dtype, copy=False)
        c = a2 * self.var[k] + s2
        proj = y @ u  # (M, m)
        inv = (1.0 / (a2 * self.lam[k] + c)).astype(y.dtype)
        out = (proj * inv) @ u.T
        if u.shape[1] < self.d:
            out += (y - proj @ u.T) / c
        return out

    def dense_prec(self, a2: float, s2: float) -> np.ndarray:
        """Dense S_k^{-1}, shape (K, d, d)."""
        k, d = self.var.shape[0], self.d
        if self.kind in ("isotropic", "diagonal"):
            diag = 1.0 / (a2 * self.var + s2)
            diag = np.broadcast_to(diag[:, None] if diag.ndim == 1 else diag, (k, d))
            out = np.zeros((k, d, d))
            idx = np.arange(d)
            out[:, idx, idx] = diag
            return out
        u = self.basis
        c = a2 * self.var + s2
        inv = 1.0 / (a2 * self.lam + c[:, None])
        out = np.einsum("kdm,km,kem->kde", u, inv, u)
        if u.shape[2] < d:
            proj = np.eye(d)[None] - np.einsum("kdm,kem->kde", u, u)
            out += proj / c[:, None, None]
        return out

    def sample_deviation(self, comps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x_0 - mu_k for components ``comps``: draws from N(0, Sigma_k), shape (n, d)."""
        n, d = comps.shape[0], self.d
        z = rng.standard_normal((n, d))
        if self.kind == "isotropic":
            return z * np.sqrt(self.var[comps])[:, None]
        if self.kind == "diagonal":
            return z * np.sqrt(self.var[comps])
        m = self.basis.shape[2]
        zm = rng.standard_normal((n, m)) * np.sqrt(self.lam[comps])
        out = np.empty((n, d))
        for k in np.unique(comps):
            sel = comps == k
            out[sel] = zm[sel] @ self.basis[k].T
        if np.any(self.var > 0):
            out += z * np.sqrt(self.var[comps])[:, None]
        return out
