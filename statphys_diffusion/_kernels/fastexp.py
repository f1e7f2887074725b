"""Vectorisable exps for numba loops (no SVML here, so ``np.exp`` stays scalar).

:func:`exp_inplace` (float64, in place over an array) and :func:`exp32` (float32, a scalar function
that LLVM inlines and vectorises inside the caller's loop).

float64:
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
from numba import njit, types
from numba.extending import intrinsic

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


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE-754 bit pattern is the low 32 bits of the integer ``bits`` (a bit cast)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        word = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(word, ir.FloatType())

    return types.float32(bits), codegen


# Cephes expf (S. L. Moshier, Cephes Math Library 2.x, ``expf.c``): ln 2 split as 0.693359375 (8
# significant bits, so k * hi is exact for |k| < 2^16) + -2.12194440e-4, and exp(r) on |r| <= ln2/2 as
# 1 + r + r^2 P(r) with P of degree 5
_LOG2E32 = np.float32(_LOG2E)
_LN2_HI32 = np.float32(0.693359375)
_LN2_LO32 = np.float32(-2.12194440e-4)
_P32 = tuple(
    np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 0.5)
)
_HALF32 = np.float32(0.5)
_ONE32 = np.float32(1.0)
#: the range :func:`exp32` takes: results stay normal float32 numbers
EXP32_MIN, EXP32_MAX = np.float32(-87.0), np.float32(88.0)


@njit(cache=CACHE)
def exp32(t):  # pragma: no cover - numba
    """exp(t) for a float32 t in [EXP32_MIN, EXP32_MAX] (the caller clamps), as a float32.

    Cody & Waite reduction t = k ln2 + r (k = round(t log2 e)), exp(r) by Cephes' expf polynomial and
    2^k from its exponent bits. Straight-line code: inside a caller's loop LLVM inlines and vectorises
    it (8 or 16 lanes), which ``np.exp`` is not here. Within 1 ulp (about 6e-8 relative) of float64
    ``np.exp`` over the range (tests/test_kernels.py).
    """
    p0, p1, p2, p3, p4, p5 = _P32
    k = math.floor(t * _LOG2E32 + _HALF32)
    r = t - k * _LN2_HI32 - k * _LN2_LO32
    y = p0 * r + p1
    y = y * r + p2
    y = y * r + p3
    y = y * r + p4
    y = y * r + p5
    y = y * (r * r) + r + _ONE32
    return y * _float32_from_bits((int(k) + 127) << 23)
