"""Fused numba kernel for Gaussian mixtures in small dimension (d up to ~10).

One pass over the K components per point with an online (running-max)
log-sum-exp, parallel over blocks of points, float64 arithmetic inside
whatever the input dtype, and no (M, K, d) temporaries: per block of rows it
allocates O(d^2) scratch. Plain arrays in, nothing validated.

Component k at time t is N(m_k, S_k) with m_k = alpha mu_k (``means_t``),
precision P_k = S_k^{-1} (``prec``) and ``bias_k = log pi_k - 1/2 log det(2 pi S_k)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# fastmath without nnan/ninf: the running max starts at -inf (DESIGN.md, lessons).
_FM = {"nsz", "arcp", "contract", "afn", "reassoc"}
_BLOCK = 256


@njit(parallel=True, fastmath=_FM, cache=False)
def mixture_small_d(x, means_t, prec, bias, want_score, want_resp, want_hess, out_lse, out_score, out_resp, out_hess):
    """Fill ``out_lse`` (M,), and if asked ``out_score`` (M, d), ``out_resp`` (M, K), ``out_hess`` (M, d, d).

    Hessian of log p: sum_k r_k (g_k g_k^T - P_k) - s s^T with g_k = P_k (m_k - x).
    """
    m_pts, d = x.shape
    n_comp = means_t.shape[0]
    n_blocks = (m_pts + _BLOCK - 1) // _BLOCK
    need_g = want_score or want_hess
    for b in prange(n_blocks):
        diff = np.empty(d)
        g = np.empty(d)
        acc = np.empty(d)
        acc_h = np.empty((d, d))
        i_end = min(m_pts, (b + 1) * _BLOCK)
        for i in range(b * _BLOCK, i_end):
            run_max = -np.inf
            run_sum = 0.0
            for j in range(d):
                acc[j] = 0.0
            if want_hess:
                for j in range(d):
                    for l in range(d):
                        acc_h[j, l] = 0.0
            for k in range(n_comp):
                for j in range(d):
                    diff[j] = means_t[k, j] - x[i, j]
                quad = 0.0
                for j in range(d):
                    gj = 0.0
                    for l in range(d):
                        gj += prec[k, j, l] * diff[l]
                    g[j] = gj
                    quad += diff[j] * gj
                logit = bias[k] - 0.5 * quad
                if want_resp:
                    out_resp[i, k] = logit
                if logit == -np.inf:
                    continue
                if logit > run_max:
                    scale = np.exp(run_max - logit) if run_max > -np.inf else 0.0
                    run_sum *= scale
                    if need_g:
                        for j in range(d):
                            acc[j] *= scale
                    if want_hess:
                        for j in range(d):
                            for l in range(d):
                                acc_h[j, l] *= scale
                    run_max = logit
                w = np.exp(logit - run_max)
                run_sum += w
                if need_g:
                    for j in range(d):
                        acc[j] += w * g[j]
                if want_hess:
                    for j in range(d):
                        for l in range(d):
                            acc_h[j, l] += w * (g[j] * g[l] - prec[k, j, l])
            lse = run_max + np.log(run_sum)
            out_lse[i] = lse
            if need_g:
                for j in range(d):
                    acc[j] /= run_sum
            if want_score:
                for j in range(d):
                    out_score[i, j] = acc[j]
            if want_hess:
                for j in range(d):
                    for l in range(d):
                        out_hess[i, j, l] = acc_h[j, l] / run_sum - acc[j] * acc[l]
            if want_resp:
                for k in range(n_comp):
                    out_resp[i, k] = np.exp(out_resp[i, k] - lse)


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
