"""Fused numba kernel for Gaussian mixtures in small dimension (d up to ~10).

Two passes over the K components per point (max of the logits, then the
weights: a stable log-sum-exp), parallel over blocks of points with the point
index innermost so that the loops vectorise, float64 arithmetic inside
whatever the input dtype, and no (M, K, d) temporaries: per block of 256
points it allocates O(K d) scratch. Plain arrays in, nothing validated.

Component k at time t is N(m_k, S_k) with m_k = alpha mu_k (``means_t``),
precision P_k = S_k^{-1} (``prec``) and ``bias_k = log pi_k - 1/2 log det(2 pi S_k)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import CACHE
from .fastexp import exp_inplace

# fastmath without nnan/ninf (the running max starts at -inf; docs/user_guide/conventions.rst, lessons) and
# without reassoc: numba compiles the inlined fastexp.exp_inplace with the caller's
# flags, and reassociation would merge its two-part ln 2 reduction (error ~1e-14).
_FM = {"nsz", "arcp", "contract", "afn"}
_BLOCK = 256


@njit(parallel=True, fastmath=_FM, cache=CACHE)
def mixture_small_d(x, means_t, prec, bias, want_score, want_resp, want_hess, out_lse, out_score, out_resp, out_hess):
    """Fill ``out_lse`` (M,), and if asked ``out_score`` (M, d), ``out_resp`` (M, K), ``out_hess`` (M, d, d).

    Points are processed in blocks of ``_BLOCK`` with the point index innermost
    (so the compiler vectorises across points); per block it keeps the logits
    (K, B) and g_k = P_k (m_k - x) (K, d, B), bounded scratch whatever M is.
    Two passes over the components: the logits and their max, then the
    weights exp(logit - max) by the vectorised :func:`fastexp.exp_inplace`.
    Hessian of log p: sum_k r_k (g_k g_k^T - P_k) - s s^T.
    """
    m_pts, d = x.shape
    n_comp = means_t.shape[0]
    n_blocks = (m_pts + _BLOCK - 1) // _BLOCK
    for b in prange(n_blocks):
        i0 = b * _BLOCK
        n = min(m_pts, i0 + _BLOCK) - i0
        L = np.empty((n_comp, _BLOCK))
        G = np.zeros((n_comp, d, _BLOCK))
        mx = np.full(_BLOCK, -np.inf)
        for k in range(n_comp):
            for j in range(d):
                for l in range(d):
                    p = prec[k, j, l]
                    ml = means_t[k, l]
                    for ii in range(n):
                        G[k, j, ii] += p * (ml - x[i0 + ii, l])
            bk = bias[k]
            for ii in range(n):
                L[k, ii] = bk
            for j in range(d):
                mj = means_t[k, j]
                for ii in range(n):
                    L[k, ii] -= 0.5 * (mj - x[i0 + ii, j]) * G[k, j, ii]
            for ii in range(n):
                if L[k, ii] > mx[ii]:
                    mx[ii] = L[k, ii]
        tot = np.zeros(_BLOCK)
        acc = np.zeros((d, _BLOCK))
        acc_h = np.zeros((d, d, _BLOCK)) if want_hess else np.zeros((0, 0, 0))
        bits = np.empty(_BLOCK, dtype=np.int64)
        for k in range(n_comp):
            row = L[k]
            for ii in range(n):
                row[ii] -= mx[ii]  # <= 0; -inf (zero weight) becomes 0 in exp_inplace
            exp_inplace(row, n, bits)
            for ii in range(n):
                tot[ii] += row[ii]
            if want_score or want_hess:
                for j in range(d):
                    for ii in range(n):
                        acc[j, ii] += L[k, ii] * G[k, j, ii]
            if want_hess:
                for j in range(d):
                    for l in range(d):
                        p = prec[k, j, l]
                        for ii in range(n):
                            acc_h[j, l, ii] += L[k, ii] * (G[k, j, ii] * G[k, l, ii] - p)
        for ii in range(n):
            i = i0 + ii
            inv = 1.0 / tot[ii]
            out_lse[i] = mx[ii] + np.log(tot[ii])
            if want_score:
                for j in range(d):
                    out_score[i, j] = acc[j, ii] * inv
            if want_resp:
                for k in range(n_comp):
                    out_resp[i, k] = L[k, ii] * inv
            if want_hess:
                for j in range(d):
                    for l in range(d):
                        out_hess[i, j, l] = acc_h[j, l, ii] * inv - acc[j, ii] * acc[l, ii] * inv * inv


def mixture_small_d_numpy(x, means_t, prec, bias):
    """Vectorised numpy reference (the benchmark baseline): (lse, score).

    Builds the (M, K, d) temporaries the fused kernel avoids.
    """
    diff = means_t[None, :, :] - x[:, None, :]  # (M, K, d)
    g = np.einsum("kjl,mkl->mkj", prec, diff)
    logits = bias[None, :] - 0.5 * np.einsum("mkj,mkj->mk", diff, g)
    mx = logits.max(axis=1, keepdims=True)
    w = np.exp(logits - mx)
    tot = w.sum(axis=1, keepdims=True)
    lse = (mx + np.log(tot))[:, 0]
    score = np.einsum("mk,mkj->mj", w / tot, g)
    return lse, score
