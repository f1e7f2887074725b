r"""Patch posteriors (the generalising analytic denoisers): BLAS + online softmax over candidate patches.

A query patch q (a noisy image's k x k window, all channels, D = C k^2 values) is compared with
candidate clean patches p_j: the posterior weight of p_j is proportional to

    exp(-|q - a p_j|^2 / (2 s2)) = exp(a q.p_j / s2 - a^2 |p_j|^2 / (2 s2) - |q|^2 / (2 s2)),

(equal priors over the candidates; the last term is the same for every j and drops out of the
softmax), and the output is the weighted mean of each candidate's *value* v_j (its centre
pixel(s), or the whole patch), sum_j w_j v_j / sum_j w_j. Keys and values are separate arrays,
unlike the empirical kernel (:mod:`.streaming`), whose values are its keys.

The arithmetic is that kernel's: per chunk of candidates one GEMM ``G = q @ p_c.T``, the fused
numba pass :func:`.streaming._chunk_softmax` (running max per row, weights below e^cut of the
row's maximum set to exactly 0: the collapsed-regime shortcut), and ``acc += W @ v_c``, as a GEMM or,
when at most 1/32 of a chunk's weights survive, as a sparse gather. With few values per candidate
(V <= 8: a centre pixel's channels, as in LS and ELS) the second product is fused into the softmax
pass instead (:func:`_softmax_values`: per row, V dot products of the weights with the values'
columns, and only the surviving candidates' exponentials when at most 1/8 survive), which skips
writing the weights back and a (rows x chunk) x (chunk x V) product that would read them again:
``benchmarks/bench_patches.py`` measures it. Memory beyond the output: one (rows x chunk) buffer.
Candidates come from a callable that builds each chunk on demand, so an
equivariant model's (images x positions) patch matrix never exists as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from numba import njit, prange

from . import CACHE
from .fastexp import exp_inplace
from .streaming import (
    CUT,
    SPARSE_FRACTION,
    _chunk_softmax,
    _gemm_accumulate,
    _gemm_cross,
    _rescale_rows,
    _sparse_accumulate,
)

# the fused pass keeps its exponential exact (1 ulp, as in .streaming: no reassociation there); its
# reductions (row maximum, sums, dot products) may reassociate, which lets them vectorise (the
# logits hold no NaN: the models refuse NaN input)
_FM = {"nsz", "arcp", "contract", "afn"}
_FM_REDUCE = {"nsz", "arcp", "contract", "afn", "reassoc", "nnan"}
_FUSED_MAX_VALUES = 8
_ROWS = 8

# chunks of candidates: (keys (n, D), values (n, V)) in the queries' dtype, C-contiguous
Chunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


def patch_posterior_mean(
    q: np.ndarray, chunks: Chunks, n_values: int, a: float, s2: float, row_block: int = 4096, return_lse: bool = False
):
    """sum_j w_j v_j / sum_j w_j for each row of ``q`` (M, D), weights as in the module docstring.

    ``chunks()`` yields the candidates as (keys, values) blocks; it is called once per block of
    ``row_block`` rows. Plain arrays in, nothing validated. Returns (M, n_values) in q's dtype, and with
    ``return_lse`` also log sum_j exp(a q.p_j / s2 - a^2 |p_j|^2 / (2 s2)) per row (M,) float64: the
    normaliser that merges the posteriors of disjoint candidate sets exactly.
    """
    out = np.empty((q.shape[0], n_values), dtype=q.dtype)
    lse = np.empty(q.shape[0])
    for r0 in range(0, q.shape[0], row_block):
        rows = np.ascontiguousarray(q[r0 : r0 + row_block])
        out[r0 : r0 + row_block], lse[r0 : r0 + row_block] = _rows(rows, chunks, n_values, a, s2)
    return (out, lse) if return_lse else out


@njit(fastmath=_FM_REDUCE, inline="never", cache=CACHE)
def _row_max(z, n):
    mx = -1e308
    for j in range(n):
        mx = max(mx, z[j])
    return mx


@njit(fastmath=_FM_REDUCE, inline="never", cache=CACHE)
def _dot(z, v, n):
    s = 0.0
    for j in range(n):
        s += z[j] * v[j]
    return s


@njit(fastmath=_FM_REDUCE, inline="never", cache=CACHE)
def _sum(z, n):
    s = 0.0
    for j in range(n):
        s += z[j]
    return s


@njit(parallel=True, fastmath=_FM, cache=CACHE)
def _softmax_values(G, c1, bias, values_t, run_max, run_sum, acc, cut):  # pragma: no cover - numba
    """One chunk of the online softmax with the values' product fused in.

    Row i's logits are z_j = c1 G[i, j] + bias[j]; with the running maximum m (updated to include this
    chunk) the weights are w_j = exp(z_j - m), 0 below e^cut; ``run_sum[i]`` and ``acc[i, v]`` (float64)
    are rescaled by exp(m_old - m) and gain sum_j w_j and sum_j w_j values_t[v, j].
    """
    rows, nc = G.shape
    n_v = values_t.shape[0]
    n_blk = (rows + _ROWS - 1) // _ROWS
    for blk in prange(n_blk):
        z = np.empty(nc)
        bits = np.empty(nc, dtype=np.int64)
        idx = np.empty(nc, dtype=np.int64)
        zs = np.empty(nc)
        for i in range(blk * _ROWS, min(rows, (blk + 1) * _ROWS)):
            for j in range(nc):
                z[j] = c1 * G[i, j] + bias[j]
            mx = _row_max(z, nc)
            old = run_max[i]
            new = old if old >= mx else mx
            scale = np.exp(old - new) if old > -np.inf else 0.0
            thr = new + cut
            kept = 0
            for j in range(nc):
                if z[j] >= thr:
                    kept += 1
            if kept * 8 <= nc:  # collapsed: only the survivors' exponentials
                m = 0
                for j in range(nc):
                    if z[j] >= thr:
                        idx[m] = j
                        zs[m] = z[j] - new
                        m += 1
                exp_inplace(zs, m, bits)
                s_w = 0.0
                for u in range(m):
                    s_w += zs[u]
                run_sum[i] = run_sum[i] * scale + s_w
                for v in range(n_v):
                    t = 0.0
                    for u in range(m):
                        t += zs[u] * values_t[v, idx[u]]
                    acc[i, v] = acc[i, v] * scale + t
            else:
                for j in range(nc):
                    zj = z[j] - new
                    z[j] = zj if zj >= cut else -1000.0  # below exp's floor: exactly 0
                exp_inplace(z, nc, bits)
                run_sum[i] = run_sum[i] * scale + _sum(z, nc)
                for v in range(n_v):
                    acc[i, v] = acc[i, v] * scale + _dot(z, values_t[v], nc)
            run_max[i] = new


@njit(cache=CACHE)
def gather_locations(block, idx, out):  # pragma: no cover - numba
    """out[n, c |idx| + l] = block[n, c, idx[l]]: the keys of a receptive field, (n, C |idx|), in the
    (channel, location) order of ``block[:, :, idx].reshape(n, -1)``.

    numpy's fancy index along the last axis of a 3-D array is slow: ``benchmarks/bench_locality.py``
    (whole denoiser calls, N = 5,000, M = 50, 2 idle cores) finds the model 1.66x faster with this
    copy for 15 x 15 fields, 1.12x for 9 x 9 and the same speed (0.99x) for 3 x 3. Serial on
    purpose: a parallel copy left numba's threads competing with the BLAS threads of the next GEMM
    (0.79x for 3 x 3 fields).
    """
    nb, n_c, _ = block.shape
    k = idx.shape[0]
    for n in range(nb):
        for ch in range(n_c):
            for l in range(k):
                out[n, ch * k + l] = block[n, ch, idx[l]]


def _logit_chunks(q: np.ndarray, chunks: Chunks):
    """Per non-empty chunk of candidates: (G = q @ keys.T in one reused (rows x chunk) buffer of the
    queries' dtype, |keys|^2 per candidate in float64, the chunk's values). ``G`` is overwritten by the
    next chunk: consume it before advancing."""
    m_rows = q.shape[0]
    buf: np.ndarray | None = None
    for keys, values in chunks():
        nc = keys.shape[0]
        if nc == 0:
            continue
        if buf is None or buf.size < m_rows * nc:
            buf = np.empty(m_rows * nc, dtype=q.dtype)
        G = buf[: m_rows * nc].reshape(m_rows, nc)
        _gemm_cross(G, q, keys)
        yield G, np.einsum("ij,ij->i", keys, keys, dtype=np.float64), values


def _rows_fused(q: np.ndarray, chunks: Chunks, n_values: int, a: float, s2: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_rows` for few values per candidate: the values' product inside the softmax pass."""
    m_rows = q.shape[0]
    cut = CUT.get(np.dtype(q.dtype), CUT[np.dtype(np.float32)])
    run_max = np.full(m_rows, -np.inf)
    run_sum = np.zeros(m_rows)
    acc = np.zeros((m_rows, n_values))
    for G, ksq, values in _logit_chunks(q, chunks):
        values_t = np.ascontiguousarray(values.T, dtype=np.float64)
        _softmax_values(G, a / s2, -0.5 * a * a * ksq / s2, values_t, run_max, run_sum, acc, cut)
    return (acc / run_sum[:, None]).astype(q.dtype, copy=False), run_max + np.log(run_sum)


def _rows(q: np.ndarray, chunks: Chunks, n_values: int, a: float, s2: float) -> tuple[np.ndarray, np.ndarray]:
    if n_values <= _FUSED_MAX_VALUES:
        return _rows_fused(q, chunks, n_values, a, s2)
    m_rows = q.shape[0]
    dt = q.dtype
    out = np.empty((m_rows, n_values), dtype=dt)
    cut = CUT.get(np.dtype(dt), CUT[np.dtype(np.float32)])
    inv_s2 = 1.0 / s2
    empty_labels = np.zeros(0, dtype=np.int64)
    no_cls = np.zeros((m_rows, 0))
    run_max = np.full(m_rows, -np.inf)
    run_sum = np.zeros(m_rows)
    acc_b = np.zeros(m_rows)
    acc_bv = np.zeros(m_rows)
    scale = np.empty(m_rows)
    nnz = np.zeros(m_rows, dtype=np.int64)
    acc = np.zeros((m_rows, n_values), dtype=dt)
    xsq = np.zeros(m_rows)  # the row constant |q|^2 / (2 s2) cancels (corr = 0 below)
    for G, ksq, values in _logit_chunks(q, chunks):
        nc = G.shape[1]
        const = np.full(nc, inv_s2)
        _chunk_softmax(
            G,
            a * const,
            -0.5 * a * a * ksq * inv_s2,
            np.zeros(nc),
            xsq,
            const,
            np.zeros(nc),
            empty_labels,
            run_max,
            run_sum,
            acc_b,
            acc_bv,
            no_cls,
            scale,
            cut,
            nnz,
        )
        _rescale_rows(acc, scale)
        if nnz.sum() <= SPARSE_FRACTION * m_rows * nc:
            _sparse_accumulate(acc, G, values)
        else:
            _gemm_accumulate(acc, G, values)
    # G held w_j / s2, so acc = sum w v / s2 and acc_b = sum w / s2
    np.divide(acc, acc_b[:, None], out=out, casting="unsafe")
    return out, run_max + np.log(run_sum)


def patch_posterior_mean_torch(q, chunks, n_values: int, a: float, s2: float, row_block: int = 4096, return_lse=False):
    """:func:`patch_posterior_mean` in torch on any device: ``q`` (M, D) and every chunk's (keys, values)
    are tensors on one device in one floating dtype. The logits and the softmax's running state are
    float64 (as in the numba kernel), the products in the input's dtype. Returns (M, n_values)."""
    import torch

    dev, dt = q.device, q.dtype
    cut = CUT.get(np.dtype(np.float32 if dt == torch.float32 else np.float64), CUT[np.dtype(np.float32)])
    out = torch.empty((q.shape[0], n_values), dtype=dt, device=dev)
    lse = torch.empty(q.shape[0], dtype=torch.float64, device=dev)
    for r0 in range(0, q.shape[0], row_block):
        qb = q[r0 : r0 + row_block]
        rows = qb.shape[0]
        run_max = torch.full((rows,), -math.inf, dtype=torch.float64, device=dev)
        run_sum = torch.zeros(rows, dtype=torch.float64, device=dev)
        acc = torch.zeros((rows, n_values), dtype=torch.float64, device=dev)
        for keys, values in chunks():
            if keys.shape[0] == 0:
                continue
            logits = (qb @ keys.T).double() * (a / s2)
            logits -= (0.5 * a * a / s2) * (keys.double() * keys.double()).sum(dim=1)
            new = torch.maximum(run_max, logits.max(dim=1).values)
            scale = torch.exp(run_max - new)  # exp(-inf) = 0 on the first chunk
            z = logits - new[:, None]
            w = torch.where(z >= cut, torch.exp(z), torch.zeros((), dtype=torch.float64, device=dev))
            run_sum = run_sum * scale + w.sum(dim=1)
            acc = acc * scale[:, None] + (w.to(dt) @ values).double()
            run_max = new
        out[r0 : r0 + rows] = (acc / run_sum[:, None]).to(dt)
        lse[r0 : r0 + rows] = run_max + torch.log(run_sum)
    return (out, lse) if return_lse else out


def _box_sums(p: np.ndarray, k: int) -> np.ndarray:
    """Sums of ``p`` (..., Hp, Wp) over every k x k window: (..., Hp - k + 1, Wp - k + 1), by a summed-area
    table (two cumulative sums and four corners per window)."""
    c = np.zeros(p.shape[:-2] + (p.shape[-2] + 1, p.shape[-1] + 1), dtype=np.float64)
    np.cumsum(p, axis=-2, out=c[..., 1:, 1:])
    np.cumsum(c[..., 1:, 1:], axis=-1, out=c[..., 1:, 1:])
    return c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + c[..., :-k, :-k]


def local_posterior_mean(x_pad, train_pad, values, k: int, a: float, s2: float, chunk: int, return_lse=False):
    r"""The local score machine at every position at once, without a GEMM per position.

    For query images ``x_pad`` (M, C, Hp, Wp) and training images ``train_pad`` (N, C, Hp, Wp), both
    zero-padded by k // 2, the window dot products q_{m,p} . k_{n,p} at all H W positions are the k x k
    box sums of the per-pixel products sum_c x_pad[m, c] train_pad[n, c] (a summed-area table), and
    |k_{n,p}|^2 the box sums of sum_c train_pad[n, c]^2: C + 6 operations per (m, n, position) instead
    of 2 C k^2. Then the online softmax over n (per query and position, chunks of ``chunk`` training
    images, weights below e^cut of the running maximum set to 0) and the weighted mean of ``values``
    (N, C, H, W). float64 inside; returns (M, C, H, W) in x_pad's dtype, and with ``return_lse`` the
    log-normaliser per query and position (M, H, W) (as :func:`patch_posterior_mean`'s).
    """
    m, c, hp, wp = x_pad.shape
    h, w = hp - k + 1, wp - k + 1
    cut = CUT.get(np.dtype(x_pad.dtype), CUT[np.dtype(np.float32)])
    xq = x_pad.astype(np.float64, copy=False)
    run_max = np.full((m, h, w), -np.inf)
    run_sum = np.zeros((m, h, w))
    acc = np.zeros((m, c, h, w))
    for n0 in range(0, train_pad.shape[0], chunk):
        tp = train_pad[n0 : n0 + chunk].astype(np.float64, copy=False)
        prod = xq[:, None, 0] * tp[None, :, 0]
        for ch in range(1, c):
            prod += xq[:, None, ch] * tp[None, :, ch]
        logits = _box_sums(prod, k)  # (M, nb, H, W): q . k
        logits *= a / s2
        logits -= (0.5 * a * a / s2) * _box_sums(np.einsum("nchw,nchw->nhw", tp, tp), k)[None]
        new = np.maximum(run_max, logits.max(axis=1))
        scale = np.exp(run_max - new)  # 0 on the first chunk (exp(-inf))
        logits -= new[:, None]
        logits[logits < cut] = -np.inf  # exactly 0 below the cut, no denormals
        np.exp(logits, out=logits)
        run_sum = run_sum * scale + logits.sum(axis=1)
        acc *= scale[:, None]
        acc += np.einsum("mnhw,nchw->mchw", logits, values[n0 : n0 + chunk].astype(np.float64, copy=False))
        run_max = new
    out = (acc / run_sum[:, None]).astype(x_pad.dtype, copy=False)
    return (out, run_max + np.log(run_sum)) if return_lse else out
