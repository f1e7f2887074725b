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
when at most 1/32 of a chunk's weights survive, as a sparse gather. Memory beyond the output: one
(rows x chunk) buffer. Candidates come from a callable that builds each chunk on demand, so an
equivariant model's (images x positions) patch matrix never exists as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from .streaming import (
    CUT,
    SPARSE_FRACTION,
    _chunk_softmax,
    _gemm_accumulate,
    _gemm_cross,
    _rescale_rows,
    _sparse_accumulate,
)

# chunks of candidates: (keys (n, D), values (n, V)) in the queries' dtype, C-contiguous
Chunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


def patch_posterior_mean(
    q: np.ndarray, chunks: Chunks, n_values: int, a: float, s2: float, row_block: int = 4096
) -> np.ndarray:
    """sum_j w_j v_j / sum_j w_j for each row of ``q`` (M, D), weights as in the module docstring.

    ``chunks()`` yields the candidates as (keys, values) blocks; it is called once per block of
    ``row_block`` rows. Plain arrays in, nothing validated. Returns (M, n_values) in q's dtype.
    """
    out = np.empty((q.shape[0], n_values), dtype=q.dtype)
    for r0 in range(0, q.shape[0], row_block):
        out[r0 : r0 + row_block] = _rows(np.ascontiguousarray(q[r0 : r0 + row_block]), chunks, n_values, a, s2)
    return out


def _rows(q: np.ndarray, chunks: Chunks, n_values: int, a: float, s2: float) -> np.ndarray:
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
    buf: np.ndarray | None = None
    for keys, values in chunks():
        nc = keys.shape[0]
        if nc == 0:
            continue
        if buf is None or buf.size < m_rows * nc:
            buf = np.empty(m_rows * nc, dtype=dt)
        G = buf[: m_rows * nc].reshape(m_rows, nc)
        _gemm_cross(G, q, keys)
        ksq = np.einsum("ij,ij->i", keys, keys, dtype=np.float64)
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
    return out


def patch_posterior_mean_torch(q, chunks, n_values: int, a: float, s2: float, row_block: int = 4096):
    """:func:`patch_posterior_mean` in torch on any device: ``q`` (M, D) and every chunk's (keys, values)
    are tensors on one device in one floating dtype. The logits and the softmax's running state are
    float64 (as in the numba kernel), the products in the input's dtype. Returns (M, n_values)."""
    import torch

    dev, dt = q.device, q.dtype
    cut = CUT.get(np.dtype(np.float32 if dt == torch.float32 else np.float64), CUT[np.dtype(np.float32)])
    out = torch.empty((q.shape[0], n_values), dtype=dt, device=dev)
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
    return out


def _box_sums(p: np.ndarray, k: int) -> np.ndarray:
    """Sums of ``p`` (..., Hp, Wp) over every k x k window: (..., Hp - k + 1, Wp - k + 1), by a summed-area
    table (two cumulative sums and four corners per window)."""
    c = np.zeros(p.shape[:-2] + (p.shape[-2] + 1, p.shape[-1] + 1), dtype=np.float64)
    np.cumsum(p, axis=-2, out=c[..., 1:, 1:])
    np.cumsum(c[..., 1:, 1:], axis=-1, out=c[..., 1:, 1:])
    return c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + c[..., :-k, :-k]


def local_posterior_mean(x_pad, train_pad, values, k: int, a: float, s2: float, chunk: int) -> np.ndarray:
    r"""The local score machine at every position at once, without a GEMM per position.

    For query images ``x_pad`` (M, C, Hp, Wp) and training images ``train_pad`` (N, C, Hp, Wp), both
    zero-padded by k // 2, the window dot products q_{m,p} . k_{n,p} at all H W positions are the k x k
    box sums of the per-pixel products sum_c x_pad[m, c] train_pad[n, c] (a summed-area table), and
    |k_{n,p}|^2 the box sums of sum_c train_pad[n, c]^2: C + 6 operations per (m, n, position) instead
    of 2 C k^2. Then the online softmax over n (per query and position, chunks of ``chunk`` training
    images, weights below e^cut of the running maximum set to 0) and the weighted mean of ``values``
    (N, C, H, W). float64 inside; returns (M, C, H, W) in x_pad's dtype.
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
    return (acc / run_sum[:, None]).astype(x_pad.dtype, copy=False)
