"""A vectorisable exp for numba loops (no SVML here, so ``np.exp`` stays scalar).

Cody & Waite (1980) range reduction with the fdlibm split of ln 2:
z = k ln2 + r, |r| <= ln2/2, k = round(z / ln2); exp(r) by its Taylor series to
degree 13 (truncation r^14/14! < 3e-18 relative), and 2^k assembled from its
IEEE-754 bits through an int64 scratch array viewed as float64. Compiled
without fast-math so the reduction z - k ln2_hi - k ln2_lo keeps its order:
measured error 1 ulp against np.exp (tests/test_kernels.py). Arguments below
-708 return 0 (true value < 3.3e-308), arguments must be <= 709.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import CACHE

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm: 32 significant bits, k * ln2_hi is exact
_LN2_LO = 1.90821492927058770002e-10
_C = tuple(1.0 / math.factorial(i) for i in range(14))
_FLOOR = -708.0


@njit(cache=CACHE)
def exp_inplace(z, n, bits):
    """z[:n] <- exp(z[:n]) for float64 z; ``bits`` is int64 scratch of length >= n."""
    c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = _C[3:]
    for i in range(n):
        zi = z[i]
        if zi < _FLOOR:
            zi = _FLOOR
        k = math.floor(zi * _LOG2E + 0.5)
        r = (zi - k * _LN2_HI) - k * _LN2_LO
        p = c12 + r * c13
        p = c11 + r * p
        p = c10 + r * p
        p = c9 + r * p
        p = c8 + r * p
        p = c7 + r * p
        p = c6 + r * p
        p = c5 + r * p
        p = c4 + r * p
        p = c3 + r * p
        p = 0.5 + r * p
        p = 1.0 + r * p
        p = 1.0 + r * p
        bits[i] = (int(k) + 1023) << 52
        z[i] = p if z[i] >= _FLOOR else 0.0
    scale = bits[:n].view(np.float64)
    for i in range(n):
        z[i] = z[i] * scale[i]
