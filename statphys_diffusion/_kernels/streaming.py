r"""Large-K isotropic mixtures (the empirical CIFAR-10 score): BLAS + online softmax.

Component k is N(alpha mu_k, c_k I) with c_k = alpha^2 v_k + sigma^2. Writing
|x - a mu_k|^2 = |x|^2 - 2 a x.mu_k + a^2 |mu_k|^2, the logits are

    L_ik = bias_k + (a / c_k) (x_i . mu_k) - |x_i|^2 / (2 c_k),
    bias_k = log pi_k - d/2 log(2 pi c_k) - a^2 |mu_k|^2 / (2 c_k).

The |x_i|^2 / (2 c_min) part is the same for every k and is added back only
to log p, so equal-variance mixtures (the empirical model) never form the
large cancelling term. Per chunk of components: one GEMM ``G = x @ mu_c.T``,
a fused numba pass that turns G in place into unnormalised weights with a
running max per row (the online softmax of Milakov & Gimelshein 2018; the
exponentials by the vectorised :func:`fastexp.exp_inplace`), and a
second GEMM ``acc += W @ mu_c`` with beta = 1 into the output. Both GEMMs go through
scipy's BLAS: numpy may link a second BLAS whose idle threads spin against scipy's on the
same cores (:func:`_gemm_cross`). Extra memory is one (rows x chunk) buffer whatever K and
M are. The flop count is 4 M K d.

Collapsed posteriors (small t, the memorisation regime): weights below e^cut of the
row's running maximum are set to exactly 0 before the exponential (cut = -46 in float64,
-30 in float32), so that the skipped mass is below K e^cut relative to the row's total
weight (5e-16 for K = 50,000 in float64; 5e-9, below float32 rounding, in float32) and
no denormal is ever formed. When a chunk keeps at most 1/32 of its (rows x chunk) weights,
the second product is a sparse gather-accumulate over the kept weights instead of a GEMM,
so a fully collapsed evaluation costs the first GEMM plus one pass over the logits.

Accumulators per row (all rescaled together when the running max grows):
run_sum = sum w_k, acc_b = sum w_k / c_k, acc_bv = sum w_k v_k / c_k,
acc_mu = sum w_k mu_k / c_k, acc_cls[c] = sum over class-c components of w_k.
Then score = (a acc_mu - acc_b x) / run_sum and
E[x0 | x] = (sigma^2 acc_mu + a acc_bv x) / run_sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy.linalg import blas

from . import CACHE
from .fastexp import exp_inplace

# fastmath without nnan/ninf (the running max starts at -inf; docs/user_guide/conventions.rst, lessons) and
# without reassoc: numba compiles the inlined fastexp.exp_inplace with the caller's
# flags, and reassociation would merge its two-part ln 2 reduction (error ~1e-14).
_FM = {"nsz", "arcp", "contract", "afn"}
_ROWS = 8  # rows per parallel task (each task owns one float64 scratch row)
CUT = {np.dtype(np.float64): -46.0, np.dtype(np.float32): -30.0}  # log relative weight below which w = 0
SPARSE_FRACTION = 1.0 / 32.0  # kept weights per chunk below which the second product is a gather


@njit(parallel=True, fastmath=_FM, cache=CACHE)
def _chunk_softmax(
    G, a_invc, bias, corr, xsq, invc, vinvc, labels, run_max, run_sum, acc_b, acc_bv, acc_cls, out_scale, cut, nnz
):
    rows, nc = G.shape
    want_cls = acc_cls.shape[1] > 0
    n_blk = (rows + _ROWS - 1) // _ROWS
    for blk in prange(n_blk):
        z = np.empty(nc)
        bits = np.empty(nc, dtype=np.int64)
        for i in range(blk * _ROWS, min(rows, (blk + 1) * _ROWS)):
            half_xsq = 0.5 * xsq[i]
            mx = -np.inf
            for j in range(nc):
                logit = bias[j] + a_invc[j] * G[i, j] - half_xsq * corr[j]
                z[j] = logit
                if logit > mx:
                    mx = logit
            old = run_max[i]
            new = old if old >= mx else mx
            if new == -np.inf:
                out_scale[i] = 1.0
                nnz[i] = 0
                for j in range(nc):
                    G[i, j] = 0.0
                continue
            scale = np.exp(old - new) if old > -np.inf else 0.0
            for j in range(nc):
                zj = z[j] - new
                # below the cut: exactly 0 (the exponential's floor returns 0 for -inf)
                z[j] = zj if zj >= cut else -np.inf
            exp_inplace(z, nc, bits)
            s_w = 0.0
            s_b = 0.0
            s_bv = 0.0
            kept = 0
            for j in range(nc):
                w = z[j]
                if w != 0.0:
                    kept += 1
                s_w += w
                s_b += w * invc[j]
                s_bv += w * vinvc[j]
                G[i, j] = w * invc[j]
            nnz[i] = kept
            if want_cls:
                for c in range(acc_cls.shape[1]):
                    acc_cls[i, c] *= scale
                for j in range(nc):
                    acc_cls[i, labels[j]] += z[j]
            run_max[i] = new
            run_sum[i] = run_sum[i] * scale + s_w
            acc_b[i] = acc_b[i] * scale + s_b
            acc_bv[i] = acc_bv[i] * scale + s_bv
            out_scale[i] = scale


@njit(parallel=True, cache=CACHE)
def _rescale_rows(acc, scale):
    for i in prange(acc.shape[0]):
        s = scale[i]
        if s != 1.0:
            for j in range(acc.shape[1]):
                acc[i, j] *= s


@njit(parallel=True, cache=CACHE)
def _combine_rows(acc, x, coef_acc, coef_x, inv_sum, out):
    """out[i] = (coef_acc * acc[i] + coef_x[i] * x[i]) * inv_sum[i], no temporaries."""
    for i in prange(acc.shape[0]):
        cx = coef_x[i]
        s = inv_sum[i]
        for j in range(acc.shape[1]):
            out[i, j] = (coef_acc * acc[i, j] + cx * x[i, j]) * s


@njit(parallel=True, cache=CACHE)
def _sparse_accumulate(acc, w, mu_c):
    """acc += w @ mu_c over the nonzero entries of w only (a gather-accumulate per row)."""
    rows, nc = w.shape
    d = acc.shape[1]
    for i in prange(rows):
        for j in range(nc):
            wij = w[i, j]
            if wij != 0.0:
                for col in range(d):
                    acc[i, col] += wij * mu_c[j, col]


def _gemm_cross(out, x, mu_c):
    """out = x @ mu_c.T in place, through the same BLAS as :func:`_gemm_accumulate`.

    numpy and scipy may link two different OpenBLAS builds, each with its own thread pool
    whose threads spin after a call; alternating numpy's product with scipy's ``gemm``
    then sets the two pools against each other on the same cores (``benchmarks/bench_kernels.py``
    case (f), 2 cores: 0.53 of the GEMM rate at 2,048 components per chunk with two pools, 0.84
    with one). Both products of a chunk therefore go through scipy's BLAS. With beta = 0 the
    BLAS does not read ``out`` (an uninitialised buffer is fine; tested with NaN).
    """
    gemm = blas.dgemm if out.dtype == np.float64 else blas.sgemm
    # Fortran view: out.T (nc, M) = mu_c (nc, d) @ x.T (d, M); mu_c.T is (d, nc) Fortran-ordered
    res = gemm(1.0, mu_c.T, x.T, trans_a=1, beta=0.0, c=out.T, overwrite_c=True)
    if not np.shares_memory(res, out):  # pragma: no cover - BLAS wrapper copied
        out[...] = res.T


def _gemm_accumulate(acc, w, mu_c):
    """acc += w @ mu_c in place (BLAS gemm with beta = 1, no temporaries)."""
    gemm = blas.dgemm if acc.dtype == np.float64 else blas.sgemm
    # Fortran view: acc.T (d, M) = mu_c.T (d, nc) @ w.T (nc, M) + acc.T
    res = gemm(1.0, mu_c.T, w.T, beta=1.0, c=acc.T, overwrite_c=True)
    if not np.shares_memory(res, acc):  # pragma: no cover - BLAS wrapper copied
        acc[...] = res.T


def chunk_size(rows: int, itemsize: int, budget_bytes: int) -> int:
    return int(max(64, budget_bytes // max(1, rows * itemsize)))


def streaming_iso(
    x,
    mu,
    musq,
    log_w,
    var,
    a: float,
    s2: float,
    labels,
    n_cls: int,
    want_score: bool,
    want_denoise: bool,
    budget_bytes: int = 64 << 20,
    row_block: int = 1024,
    chunk: int | None = None,
    sparse: bool = True,
):
    """Evaluate an isotropic mixture at rows x (M, d).

    Parameters are plain arrays: ``mu`` (K, d) in x's dtype, ``musq`` (K,)
    float64 = |mu_k|^2, ``log_w`` (K,), ``var`` (K,) component variances v_k,
    ``labels`` (K,) int64 codes (ignored when ``n_cls == 0``). ``sparse=False`` always uses the
    GEMM for the second product (the cut on tiny weights applies either way; module docstring).

    Returns (lse (M,), score or None, denoise or None, class posterior (M, n_cls) or None).
    """
    m_pts, d = x.shape
    k_all = mu.shape[0]
    dt = x.dtype
    c = a * a * var + s2
    invc = 1.0 / c
    invc_min = invc.min()
    bias_all = log_w - 0.5 * d * np.log(2.0 * np.pi * c) - 0.5 * a * a * musq * invc
    a_invc_all = a * invc
    corr_all = invc - invc_min
    vinvc_all = var * invc
    lse = np.empty(m_pts)
    score = np.empty((m_pts, d), dtype=dt) if want_score else None
    den = np.empty((m_pts, d), dtype=dt) if want_denoise else None
    cls_out = np.empty((m_pts, n_cls)) if n_cls else None
    rb = max(1, min(row_block, m_pts))
    nc = chunk if chunk is not None else chunk_size(rb, dt.itemsize, budget_bytes)
    nc = max(1, min(nc, k_all))
    buf = np.empty(rb * nc, dtype=dt)
    acc = np.empty((rb, d), dtype=dt)
    cut = CUT.get(np.dtype(dt), CUT[np.dtype(np.float32)])
    nnz = np.zeros(rb, dtype=np.int64)
    for r0 in range(0, m_pts, rb):
        r1 = min(m_pts, r0 + rb)
        rows = r1 - r0
        xb = x[r0:r1]
        xsq = np.einsum("ij,ij->i", xb, xb, dtype=np.float64)
        run_max = np.full(rows, -np.inf)
        run_sum = np.zeros(rows)
        acc_b = np.zeros(rows)
        acc_bv = np.zeros(rows)
        acc_cls = np.zeros((rows, n_cls))
        scale = np.empty(rows)
        accb = acc[:rows]
        accb[...] = 0
        for k0 in range(0, k_all, nc):
            k1 = min(k_all, k0 + nc)
            mu_c = mu[k0:k1]
            G = buf[: rows * (k1 - k0)].reshape(rows, k1 - k0)
            _gemm_cross(G, xb, mu_c)
            _chunk_softmax(
                G,
                a_invc_all[k0:k1],
                bias_all[k0:k1],
                corr_all[k0:k1],
                xsq,
                invc[k0:k1],
                vinvc_all[k0:k1],
                labels[k0:k1],
                run_max,
                run_sum,
                acc_b,
                acc_bv,
                acc_cls,
                scale,
                cut,
                nnz,
            )
            _rescale_rows(accb, scale)
            if sparse and nnz[:rows].sum() <= SPARSE_FRACTION * rows * (k1 - k0):
                _sparse_accumulate(accb, G, mu_c)
            else:
                _gemm_accumulate(accb, G, mu_c)
        lse[r0:r1] = run_max + np.log(run_sum) - 0.5 * xsq * invc_min
        inv_sum = 1.0 / run_sum
        if score is not None:  # (allocated exactly when want_score; likewise den and cls_out)
            _combine_rows(accb, xb, a, -acc_b, inv_sum, score[r0:r1])
        if den is not None:
            _combine_rows(accb, xb, s2, a * acc_bv, inv_sum, den[r0:r1])
        if cls_out is not None:
            cls_out[r0:r1] = acc_cls * inv_sum[:, None]
    return lse, score, den, cls_out


def dense_iso_logits(x, mu, musq, log_w, var, a: float, s2: float) -> np.ndarray:
    """All logits log pi_k + log N(x; a mu_k, c_k I), shape (M, K), float64 (reference / posterior)."""
    d = x.shape[1]
    c = a * a * var + s2
    xsq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    cross = (x @ mu.T).astype(np.float64)
    sq = xsq[:, None] - 2.0 * a * cross + (a * a) * musq[None, :]
    return log_w[None, :] - 0.5 * d * np.log(2.0 * np.pi * c)[None, :] - 0.5 * sq / c[None, :]
