r"""The covariance spectrum of a data array, streamed in float64.

C = 1/(N - 1) sum_i (x_i - m)(x_i - m)^T with m the sample mean, accumulated over
row chunks as the centred Gram sum (first pass: the mean; second pass:
sum of z^T z over chunks of centred rows z), in float64 whatever the input's dtype,
so an (N, d) = (50,000, 3,072) float32 array needs one d x d float64 matrix
(75 MB) and one chunk, never an N x d float64 copy. The eigenvalues come from
``numpy.linalg.eigvalsh`` and are returned in decreasing order, clipped at 0
(a rank-deficient sample covariance has eigenvalues of size rounding error,
which may come out slightly negative).

These spectra feed the predictions that need one: the speciation time (top
eigenvalue; Biroli et al. 2024), the collapse time (all eigenvalues), the
geometric-memorisation retention (tangent variances).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks
from ._results import TidyResult, axes

__all__ = ["CovarianceSpectrum", "covariance_spectrum"]


@dataclass(frozen=True, repr=False)
class CovarianceSpectrum(TidyResult):
    """Output of :func:`covariance_spectrum`.

    Attributes
    ----------
    eigenvalues : (d,) decreasing, non-negative
    mean : (d,) sample mean
    n : number of rows
    """

    eigenvalues: np.ndarray
    mean: np.ndarray
    n: int

    @property
    def top(self) -> float:
        """The largest eigenvalue (Lambda of the speciation time)."""
        return float(self.eigenvalues[0])

    def __repr__(self) -> str:
        lam = self.eigenvalues
        return f"CovarianceSpectrum(n={self.n}, d={lam.size}, top={self.top:.4g}, trace={lam.sum():.4g})"

    def to_rows(self) -> list[dict]:
        """One plain dict per eigenvalue (rank 0 = largest)."""
        return [{"rank": i, "eigenvalue": float(v)} for i, v in enumerate(self.eigenvalues)]

    def plot(self, ax=None):
        """The eigenvalues against their rank (1 = largest), log-log; returns the Axes.

        Zero eigenvalues are drawn at 1e-16 so that a rank-deficient spectrum stays visible."""
        ax = axes(ax)
        rank = np.arange(1, self.eigenvalues.size + 1)
        ax.loglog(rank, np.maximum(self.eigenvalues, 1e-16), lw=1.5)
        ax.set_xlabel("rank")
        ax.set_ylabel("eigenvalue of data covariance")
        return ax


def covariance_spectrum(data, *, chunk: int = 4096) -> CovarianceSpectrum:
    """Eigenvalues of the sample covariance of ``data`` (N, d), N >= 2, streamed over ``chunk`` rows.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> y = np.random.default_rng(0).standard_normal((200, 4)) * [3.0, 1.0, 1.0, 1.0]
    >>> spec = sd.covariance_spectrum(y)
    >>> bool(np.isclose(spec.top, 9.0, rtol=0.2))  # the stretched direction's variance, 3^2
    True
    """
    x = np.asarray(data)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"data must have shape (N, d) with N >= 2, got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"data must be numeric, got dtype {x.dtype}")
    if np.iscomplexobj(x):
        raise TypeError(f"data must be real, got complex dtype {x.dtype}")
    chunk = _checks.check_positive_int(chunk, "chunk")
    n, d = x.shape
    mean = np.zeros(d)
    for lo in range(0, n, chunk):
        block = np.asarray(x[lo : lo + chunk], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise ValueError("data contains NaN or inf")
        mean += block.sum(axis=0)
    mean /= n
    gram = np.zeros((d, d))
    for lo in range(0, n, chunk):
        z = np.asarray(x[lo : lo + chunk], dtype=np.float64) - mean
        gram += z.T @ z
    cov = gram / (n - 1)
    lam = np.clip(np.linalg.eigvalsh(0.5 * (cov + cov.T))[::-1], 0.0, None)
    return CovarianceSpectrum(eigenvalues=np.ascontiguousarray(lam), mean=mean, n=int(n))
