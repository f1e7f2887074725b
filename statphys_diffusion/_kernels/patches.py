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
(V <= 8: a centre pixel's channels, as in ELS and the data-driven locality model) the second product
is fused into the softmax pass instead (:func:`_softmax_rows`: per row, V dot products of the weights
with the values' columns, and only the surviving candidates' exponentials when at most 1/8 survive),
which skips writing the weights back and a (rows x chunk) x (chunk x V) product that would read them
again. That fused path runs in threads of its own, each taking blocks of query rows through GEMM and
softmax while the block's logits are in cache, with BLAS single-threaded (:func:`_rows_fused`); in
float32 its pass uses a vectorised float32 exp (:func:`.fastexp.exp32`) and no maximum pass on chunks
that do not raise a row's maximum much (:func:`_softmax_rows32`). ``benchmarks/bench_patches.py``
measures it. Memory beyond the output: one (rows x chunk) buffer, or in the fused path one
(block x chunk) buffer per thread. Candidates come from a callable that builds each chunk on demand,
so an equivariant model's (images x positions) patch matrix never exists as a whole.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator

import numba
import numpy as np
from numba import njit

from . import CACHE
from .fastexp import EXP32_MIN, exp32, exp_inplace
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
# query rows per thread's GEMM in the fused pass: a (256 x chunk) float32 block of logits (4 MB at the
# 3,888 candidates of a CIFAR-10 ELS chunk) stays in cache between its GEMM and its softmax pass
_SUB_ROWS = 256

# chunks of candidates: (keys (n, D), values (n, V)) in the queries' dtype, C-contiguous; each chunk in
# arrays of its own (the fused pass cuts the next chunk while the current one is in use)
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


@njit(nogil=True, fastmath=_FM, cache=CACHE)
def _softmax_rows(G, c1, bias, values_t, run_max, run_sum, acc, cut):  # pragma: no cover - numba
    """One chunk of the online softmax with the values' product fused in, for float64 logits (serial:
    :func:`_rows_fused` gives each thread its own rows).

    Row i's logits are z_j = c1 G[i, j] + bias[j]; with the running maximum m (updated to include this
    chunk) the weights are w_j = exp(z_j - m), 0 below e^cut; ``run_sum[i]`` and ``acc[i, v]`` (float64)
    are rescaled by exp(m_old - m) and gain sum_j w_j and sum_j w_j values_t[v, j].
    """
    rows, nc = G.shape
    n_v = values_t.shape[0]
    z = np.empty(nc)
    bits = np.empty(nc, dtype=np.int64)
    idx = np.empty(nc, dtype=np.int64)
    zs = np.empty(nc)
    for i in range(rows):
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


# float32 pass: a row's weights are taken against its reference logit (the running maximum of earlier
# chunks) without a maximum pass of their own, unless a logit exceeds it by more than _OVER (then the row
# is redone against its new maximum, as on its first chunk)
_OVER = np.float32(40.0)
# The float32 pass sums a chunk's weights (and weights x values) in float32: vectorised, each of 16 to
# 64 lanes adds n / 64 to n / 16 positive terms, so the relative rounding is about sqrt(n / 16) float32
# roundings (3e-6 at n = 50,000), under that of the float32 logits themselves (the GEMM's products
# round to ~1e-6 of |q||p|, times a / s2, in a logit); chunks are added up in float64. (Converting each
# term to float64 made an ELS call measurably slower.)


@njit(fastmath=_FM_REDUCE, inline="never", cache=CACHE)
def _row_max32(g, c1, bias, n):  # pragma: no cover - numba
    """max_j c1 g[j] + bias[j] (float32), with 16 independent maxima (LLVM does not vectorise a
    floating-point max reduction here)."""
    lanes = np.full(16, np.float32(-3e38), dtype=np.float32)
    n16 = n - n % 16
    for j0 in range(0, n16, 16):
        for u in range(16):
            z = c1 * g[j0 + u] + bias[j0 + u]
            lanes[u] = z if z > lanes[u] else lanes[u]
    mx = lanes.max()
    for j in range(n16, n):
        z = c1 * g[j] + bias[j]
        mx = z if z > mx else mx
    return mx


@njit(fastmath=_FM_REDUCE, inline="never", cache=CACHE)
def _exp_row32(g, c1, bias, ref, cut, w, n):  # pragma: no cover - numba
    """w[j] = exp(c1 g[j] + bias[j] - ref), 0 where the exponent is below ``cut``; returns (sum_j w[j],
    summed in float32, as a float64; nonzero if an exponent exceeds _OVER: those weights are clamped and
    the row must be redone)."""
    s = np.float32(0.0)
    over = np.int32(0)
    for j in range(n):
        t = c1 * g[j] + bias[j] - ref
        over |= np.int32(t > _OVER)
        y = exp32(min(max(t, EXP32_MIN), _OVER))
        y = y if t >= cut else np.float32(0.0)
        w[j] = y
        s += y
    return np.float64(s), over


@njit(fastmath=_FM_REDUCE, inline="never", cache=CACHE)
def _dot32(w, v, n):  # pragma: no cover - numba
    """sum_j w[j] v[j] in float32 (see _OVER's comment on the sums' rounding)."""
    s = np.float32(0.0)
    for j in range(n):
        s += w[j] * v[j]
    return np.float64(s)


@njit(nogil=True, cache=CACHE)
def _softmax_rows32(G, c1, bias, values_t, run_max, run_sum, acc, cut):  # pragma: no cover - numba
    """:func:`_softmax_rows` for float32 logits, with the float32 :func:`.fastexp.exp32` vectorised.

    Row i's weights are w_j = exp(c1 G[i, j] + bias[j] - ref), ref = ``run_max[i]`` (float64 state, as
    there): the reference of earlier chunks, so no maximum pass, and ``run_max``, ``run_sum``, ``acc``
    keep their meaning (log sum_j exp(z_j) = run_max + log run_sum). On a row's first chunk, or where a
    logit exceeds the reference by more than _OVER (e^40: the sums stay finite), the row is done
    against its maximum over this chunk and the state rescaled, as in :func:`_softmax_rows`. Weights
    below e^cut of the reference are 0; the reference never exceeds the row's maximum, so nothing
    above e^cut of the maximum is dropped. The exponent is formed in float32: its rounding
    (6e-8 of |c1 G| + |bias|) is that of the float32 GEMM's products themselves.
    """
    rows, nc = G.shape
    n_v = values_t.shape[0]
    cut32 = np.float32(cut)
    w = np.empty(nc, dtype=np.float32)
    for i in range(rows):
        old = run_max[i]
        scale = 1.0
        over = 1
        if old > -np.inf:
            s_w, over = _exp_row32(G[i], c1, bias, np.float32(old), cut32, w, nc)
        if over:  # the row's first chunk, or a logit far above the reference: against this chunk's maximum
            new = max(old, np.float64(_row_max32(G[i], c1, bias, nc)))
            scale = np.exp(old - new) if old > -np.inf else 0.0
            s_w, over = _exp_row32(G[i], c1, bias, np.float32(new), cut32, w, nc)
            run_max[i] = new
        run_sum[i] = run_sum[i] * scale + s_w
        for v in range(n_v):
            acc[i, v] = acc[i, v] * scale + _dot32(w, values_t[v], nc)


@njit(nogil=True, cache=CACHE)
def _fused_block(q, keys_t, G, c1, bias, values_t, run_max, run_sum, acc, cut):  # pragma: no cover - numba
    """G = q @ keys_t (BLAS, called without the GIL), then :func:`_softmax_rows` on it: one thread's
    rows of one chunk, float64."""
    np.dot(q, keys_t, G)
    _softmax_rows(G, c1, bias, values_t, run_max, run_sum, acc, cut)


@njit(nogil=True, cache=CACHE)
def _fused_block32(q, keys_t, G, c1, bias, values_t, run_max, run_sum, acc, cut):  # pragma: no cover - numba
    """:func:`_fused_block` for float32: sgemm, then :func:`_softmax_rows32`."""
    np.dot(q, keys_t, G)
    _softmax_rows32(G, c1, bias, values_t, run_max, run_sum, acc, cut)


@njit(cache=CACHE)
def gather_locations(block, idx, out):  # pragma: no cover - numba
    """out[n, c |idx| + l] = block[n, c, idx[l]]: the keys of a receptive field, (n, C |idx|), in the
    (channel, location) order of ``block[:, :, idx].reshape(n, -1)``.

    numpy's fancy index along the last axis of a 3-D array is slow: ``benchmarks/bench_locality.py``
    (whole denoiser calls, N = 5,000, M = 50, 2 idle cores) finds the model 2.15x faster with this
    copy for 15 x 15 fields, 1.45x for 9 x 9 and 1.33x for 3 x 3 (with the threaded fused pass of
    :func:`_rows_fused`; before it, when the rest of a call was slower, 1.66x, 1.12x and 0.99x).
    Serial on purpose: a parallel copy left numba's threads competing with the BLAS threads of the
    next GEMM (0.79x for 3 x 3 fields, before the fused pass's change).
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
    """:func:`_rows` for few values per candidate: the values' product inside the softmax pass.

    The query rows are cut into blocks (at most _SUB_ROWS rows, at least one block per thread), and
    each of ``numba.get_num_threads()`` threads takes its own blocks through every chunk: its GEMM
    (single-threaded BLAS, called from numba without the GIL) writes the block's logits into the
    thread's buffer, which its softmax pass reads while they are still in cache. One pool of threads
    does both products: with BLAS's own threads for the GEMM and numba's for the pass, the two pools'
    idle threads spin against each other on the same cores (on 2 cores that slowed the pass severalfold).
    The next chunk is cut (``chunks()`` runs in the calling thread) while the threads work on this one.
    """
    m_rows = q.shape[0]
    single = q.dtype == np.float32
    dt = np.float32 if single else np.float64
    block_fn = _fused_block32 if single else _fused_block
    cut = CUT.get(np.dtype(q.dtype), CUT[np.dtype(np.float32)])
    c1 = dt(a / s2)
    run_max = np.full(m_rows, -np.inf)
    run_sum = np.zeros(m_rows)
    acc = np.zeros((m_rows, n_values))
    n_threads = max(1, min(numba.get_num_threads(), m_rows))
    size = min(_SUB_ROWS, -(-m_rows // n_threads))
    blocks = [(r0, min(m_rows, r0 + size)) for r0 in range(0, m_rows, size)]
    buffers: list = [np.empty(0, dtype=dt)] * n_threads

    def work(t: int, keys_t: np.ndarray, bias: np.ndarray, values_t: np.ndarray) -> None:
        nc = keys_t.shape[1]
        if buffers[t].size < size * nc:
            buffers[t] = np.empty(size * nc, dtype=dt)
        for r0, r1 in blocks[t::n_threads]:
            G = buffers[t][: (r1 - r0) * nc].reshape(r1 - r0, nc)
            state = (run_max[r0:r1], run_sum[r0:r1], acc[r0:r1])
            block_fn(q[r0:r1], keys_t, G, c1, bias, values_t, *state, cut)

    def prepared(it):
        for keys, values in it:
            if keys.shape[0]:
                bias = (-0.5 * a * a / s2) * np.einsum("ij,ij->i", keys, keys, dtype=np.float64)
                yield keys.T, bias.astype(dt, copy=False), np.ascontiguousarray(values.T, dtype=dt)

    pool = _pool(n_threads)
    with _single_threaded_blas():
        todo = prepared(chunks())
        item = next(todo, None)
        while item is not None:
            running = [pool.submit(work, t, *item) for t in range(n_threads)]
            item = next(todo, None)  # the next chunk, cut while the threads run
            for job in running:
                job.result()
    return (acc / run_sum[:, None]).astype(q.dtype, copy=False), run_max + np.log(run_sum)


_POOL: list = []
_POOL_LOCK = threading.Lock()


def _pool(n_threads: int):
    """A process-wide pool of ``n_threads`` worker threads (made again when the count changes; a pool
    replaced while another caller uses it finishes that caller's work first)."""
    from concurrent.futures import ThreadPoolExecutor

    with _POOL_LOCK:
        if not _POOL or _POOL[0][0] != n_threads:
            if _POOL:
                _POOL.pop()[1].shutdown(wait=False)
            _POOL.append((n_threads, ThreadPoolExecutor(n_threads, thread_name_prefix="statphys-patches")))
        return _POOL[0][1]


_BLAS: dict = {"users": 0, "limiter": None, "controller": None}
_BLAS_LOCK = threading.Lock()


@contextlib.contextmanager
def _single_threaded_blas():
    """A context in which the BLAS libraries run single-threaded (threadpoolctl), so that the worker
    threads' GEMMs do not each start BLAS's own threads. Counted across callers: the first one in sets
    the limit, the last one out restores the libraries' own thread counts (callers in several threads
    at once would otherwise restore each other's limit, not the original)."""
    from threadpoolctl import ThreadpoolController

    with _BLAS_LOCK:
        if _BLAS["users"] == 0:
            if _BLAS["controller"] is None:
                _BLAS["controller"] = ThreadpoolController()
            _BLAS["limiter"] = _BLAS["controller"].limit(limits=1, user_api="blas")
        _BLAS["users"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["users"] -= 1
            if _BLAS["users"] == 0:
                _BLAS["limiter"].restore_original_limits()
                _BLAS["limiter"] = None


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


@njit(nogil=True, cache=CACHE)
def _window_rows(images_t, i, j, k, n0, nb, out):  # pragma: no cover - numba
    """The k x k window centred on pixel (i, j) of images n0 .. n0 + nb, one row per in-image pixel and
    channel: out[f, u] = images_t[c, y, x, n0 + u] for the f-th (c, y, x) in (channel, row, column)
    order, ``images_t`` in (C, H, W, N) layout so that each row is one contiguous copy. Returns the row
    count: pixels outside the image are left out (zero padding adds nothing to a dot product or a norm).
    """
    n_c, h, w, _ = images_t.shape
    r = k // 2
    f = 0
    for ch in range(n_c):
        for di in range(k):
            y = i + di - r
            if y < 0 or y >= h:
                continue
            for dj in range(k):
                x = j + dj - r
                if x < 0 or x >= w:
                    continue
                for u in range(nb):
                    out[f, u] = images_t[ch, y, x, n0 + u]
                f += 1
    return f


def local_posterior_mean(x, train, k: int, a: float, s2: float, chunk: int, return_lse=False):
    r"""The local score machine (LS): at each pixel, the posterior over the N training patches centred on
    that same pixel, zero padding at the borders.

    For query images ``x`` (M, C, H, W) and training images ``train`` (N, C, H, W), pixel p's queries
    are the M windows q_{m,p} and its candidates the N windows k_{n,p}, with values ``train[:, :, p]``
    (the centre pixels). The training set is laid out once as (C, H, W, N), so a window's rows for a
    chunk of images are contiguous copies (the (N, C, H, W) layout made it a gather touching one cache
    line per image, row and channel). The pixels are shared among ``numba.get_num_threads()`` threads;
    each runs its pixels over chunks of ``chunk`` training images through one GEMM and the fused
    softmax pass of :func:`_rows_fused` (without the GIL, BLAS single-threaded), with the online
    log-sum-exp across chunks. Returns (M, C, H, W) in x's dtype, and with ``return_lse`` the
    log-normaliser per query and pixel (M, H, W) (as :func:`patch_posterior_mean`'s).

    (Until this round's tenth session LS summed its window products by summed-area tables, C + 6
    operations per (query, candidate, pixel) instead of 2 C k^2, in float64 numpy; a GEMM per pixel
    is faster: ``benchmarks/bench_patches.py``.)
    """
    m, c, h, w = x.shape
    n = train.shape[0]
    dim = c * k * k
    dt = x.dtype.type
    block_fn = _fused_block32 if x.dtype == np.float32 else _fused_block
    cut = CUT.get(np.dtype(x.dtype), CUT[np.dtype(np.float32)])
    c1 = dt(a / s2)
    per = max(1, min(chunk, n))
    train_t = np.ascontiguousarray(train.transpose(1, 2, 3, 0), dtype=dt)
    x_t = np.ascontiguousarray(x.transpose(1, 2, 3, 0))
    out = np.empty((m, c, h, w), dtype=x.dtype)
    norm = np.empty((m, h, w))
    n_threads = max(1, min(numba.get_num_threads(), h * w))

    def work(t: int) -> None:
        keys_buf = np.empty(dim * per, dtype=dt)
        logits_buf = np.empty(m * per, dtype=dt)
        q_t = np.empty((dim, m), dtype=dt)
        for pix in range(t, h * w, n_threads):
            i, j = divmod(pix, w)
            f = _window_rows(x_t, i, j, k, 0, m, q_t)
            q = np.ascontiguousarray(q_t[:f].T)
            run_max = np.full(m, -np.inf)
            run_sum = np.zeros(m)
            acc = np.zeros((m, c))
            for n0 in range(0, n, per):
                nb = min(per, n - n0)
                keys_t = keys_buf[: dim * nb].reshape(dim, nb)
                _window_rows(train_t, i, j, k, n0, nb, keys_t)
                keys_t = keys_t[:f]
                bias = ((-0.5 * a * a / s2) * np.einsum("fn,fn->n", keys_t, keys_t, dtype=np.float64)).astype(dt)
                values_t = np.ascontiguousarray(train_t[:, i, j, n0 : n0 + nb])
                logits = logits_buf[: m * nb].reshape(m, nb)
                block_fn(q, keys_t, logits, c1, bias, values_t, run_max, run_sum, acc, cut)
            out[:, :, i, j] = acc / run_sum[:, None]
            norm[:, i, j] = run_max + np.log(run_sum)

    pool = _pool(n_threads)
    with _single_threaded_blas():
        for job in [pool.submit(work, t) for t in range(n_threads)]:
            job.result()
    return (out, norm) if return_lse else out
