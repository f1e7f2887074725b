"""Kernel benchmarks, each side by side with its baseline in the same run.

(a) Exact empirical score at CIFAR-10 scale (N = 50,000, d = 3,072, M = 1,024):
    the streaming kernel against a plain numpy implementation (full (M, N)
    logits, softmax, product) and against the machine's GEMM rate measured in
    the same run on the same shapes (x @ mu.T). The kernel does 4 M N d flops;
    its rate is reported as a fraction of the GEMM rate. Peak extra memory
    (tracemalloc, which sees numpy's allocations; inputs excluded, outputs
    included) is reported for both.
(b) Small-d mixture (M = 10^6 points, K = 8, d in {1, 2}): the fused numba
    kernel against vectorised numpy with (M, K, d) temporaries.
(c) The collapsed regime (random Gaussian points, N = 20,000, d = 3,072, M = 512,
    float64, OU t = 0.2: one point carries all the weight of every row): the kernel
    with its sparse second product, the same kernel forced dense (two GEMMs), numpy, and
    the first GEMM alone (the floor), same run.
(d) A t sweep from collapsed to mixed on the same data: sparse and dense kernel, the
    fraction of kept weights, and the kernel's time over the first GEMM's.
(e) The torch backend (``backend="torch"``, CPU) beside the numba kernel on case (a).
(f) One BLAS or two, in the mixed regime (t = 4 on case (c)'s data, forced dense): the kernel as it
    is (both products through scipy's BLAS) beside the same kernel whose first product goes through
    numpy's matmul (numpy's wheel links its own OpenBLAS, whose thread pool then alternates with
    scipy's on the same cores), at the default chunk and at 2,048 components per chunk.

Usage: python benchmarks/bench_kernels.py [--quick] [--out benchmarks/results/kernels.csv]
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
from scipy.special import softmax

from statphys_diffusion import EmpiricalDistribution, GaussianMixture, _bench
from statphys_diffusion._kernels import small_d


def _case_keys(benchmark: str, dtype, n: int, d: int, m: int) -> dict:
    """The leading columns of every row: the case's name, dtype and sizes (N points, d, M queries)."""
    return {"benchmark": benchmark, "dtype": np.dtype(dtype).name, "N": n, "d": d, "M": m}


def _best_time(fn, repeat: int) -> float:
    return _bench.best_of(fn, repeat)[0]


def numpy_empirical_score(x, mu, a, s2):
    """Plain numpy reference: dense (M, N) logits, softmax, r @ mu."""
    logits = (a * (x @ mu.T) - 0.5 * a * a * np.einsum("nd,nd->n", mu, mu)[None, :]) / s2
    r = softmax(logits, axis=1).astype(x.dtype)
    return (a * (r @ mu) - x) / s2


def bench_large(n, d, m, repeat, rows):
    rng = np.random.default_rng(0)
    mu64 = rng.uniform(-1, 1, (n, d))
    for dtype in (np.float32, np.float64):
        rows.append(_large_case(mu64, dtype, m, repeat, rng))


def _large_case(mu64, dtype, m, repeat, rng):
    n, d = mu64.shape
    t = 0.5
    emp = EmpiricalDistribution(mu64.astype(dtype))
    a, s2 = float(emp.schedule.alpha(t)), float(emp.schedule.sigma2(t))
    mu = emp._mu_as(dtype)
    x = (a * mu[rng.integers(0, n, m)] + np.sqrt(s2) * rng.standard_normal((m, d))).astype(dtype)
    emp.score(x[:8], t)  # compile
    flops = 4.0 * m * n * d
    t_gemm = _best_time(lambda: x @ mu.T, repeat)  # 2 M N d flops
    gemm_rate = 2.0 * m * n * d / t_gemm
    t_ours = _best_time(lambda: emp.score(x, t), repeat)
    t_np = _best_time(lambda: numpy_empirical_score(x, mu, a, s2), repeat)
    mem_ours = _bench.peak_mib(lambda: emp.score(x, t))
    mem_np = _bench.peak_mib(lambda: numpy_empirical_score(x, mu, a, s2))
    err = float(np.abs(emp.score(x, t) - numpy_empirical_score(x, mu, a, s2)).max())
    out_mib = m * d * np.dtype(dtype).itemsize / 2**20
    return {
        **_case_keys("empirical_score", dtype, n, d, m),
        "gemm_gflops": gemm_rate / 1e9,
        "kernel_s": t_ours,
        "kernel_gflops": flops / t_ours / 1e9,
        "fraction_of_gemm": flops / t_ours / gemm_rate,
        "numpy_s": t_np,
        "speedup_vs_numpy": t_np / t_ours,
        "kernel_peak_mib": mem_ours,
        "kernel_extra_mib_beyond_output": mem_ours - out_mib,
        "numpy_peak_mib": mem_np,
        "max_abs_diff": err,
    }


def bench_small(m, k, repeat, rows):
    rng = np.random.default_rng(1)
    for d in (1, 2):
        rows.append(_small_case(m, k, d, repeat, rng))


def _small_case(m, k, d, repeat, rng):
    gm = GaussianMixture.isotropic(rng.normal(size=(k, d)) * 2, rng.uniform(0.1, 1.0, k))
    t = 0.3
    a, s2 = float(gm.schedule.alpha(t)), float(gm.schedule.sigma2(t))
    means_t, prec, bias = gm._small_params(a, s2)
    x = rng.normal(size=(m, d))
    gm.score(x[:10], t)  # compile
    t_ours = _best_time(lambda: gm.score(x, t), repeat)
    t_np = _best_time(lambda: small_d.mixture_small_d_numpy(x, means_t, prec, bias), repeat)
    err = float(np.abs(gm.score(x, t) - small_d.mixture_small_d_numpy(x, means_t, prec, bias)[1]).max())
    return {
        "benchmark": "small_d_score",
        "dtype": "float64",
        "N": k,
        "d": d,
        "M": m,
        "kernel_s": t_ours,
        "numpy_s": t_np,
        "speedup_vs_numpy": t_np / t_ours,
        "kernel_peak_mib": _bench.peak_mib(lambda: gm.score(x, t)),
        "numpy_peak_mib": _bench.peak_mib(lambda: small_d.mixture_small_d_numpy(x, means_t, prec, bias)),
        "max_abs_diff": err,
    }


def _collapsed_data(n, d, m, t, dtype, seed=2):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((n, d)).astype(dtype)
    emp = EmpiricalDistribution(mu)
    a, s2 = float(emp.schedule.alpha(t)), float(emp.schedule.sigma2(t))
    x = (a * mu[rng.integers(0, n, m)] + np.sqrt(s2) * rng.standard_normal((m, d))).astype(dtype)
    return emp, x, a, s2


def _stream_args(emp, x, a, s2):
    codes = np.zeros(emp.n_components, np.int64)
    return (x, emp._mu_as(x.dtype), emp._musq, emp._log_w, emp._cov.var, a, s2, codes, 0, True, False)


def _kept_fraction(emp, x, a, s2, cut) -> float:
    from statphys_diffusion._kernels.streaming import dense_iso_logits

    rows = x[: min(64, x.shape[0])].astype(np.float64)
    lg = dense_iso_logits(rows, emp.means, emp._musq, emp._log_w, emp._cov.var, a, s2)
    return float(np.mean(lg - lg.max(axis=1, keepdims=True) >= cut))


def bench_collapsed(n, d, m, repeat, rows, times=(0.2,), label="collapsed"):
    for t in times:
        rows.append(_collapsed_case(n, d, m, t, repeat, label))


def _collapsed_case(n, d, m, t, repeat, label):
    from statphys_diffusion._kernels import streaming

    emp, x, a, s2 = _collapsed_data(n, d, m, t, np.float64)
    mu = emp._mu_as(np.float64)
    args = _stream_args(emp, x, a, s2)
    emp.score(x[:8], t)  # compile
    t_gemm = _best_time(lambda: x @ mu.T, repeat)
    t_sparse = _best_time(lambda: streaming.streaming_iso(*args), repeat)
    t_dense = _best_time(lambda: streaming.streaming_iso(*args, sparse=False), repeat)
    t_np = _best_time(lambda: numpy_empirical_score(x, mu, a, s2), repeat)
    err = float(np.abs(streaming.streaming_iso(*args)[1] - streaming.streaming_iso(*args, sparse=False)[1]).max())
    return {
        **_case_keys(f"empirical_score_{label}", np.float64, n, d, m),
        "t": t,
        "kept_weight_fraction": _kept_fraction(emp, x, a, s2, streaming.CUT[np.dtype(np.float64)]),
        "first_gemm_s": t_gemm,
        "kernel_s": t_sparse,
        "kernel_dense_s": t_dense,
        "numpy_s": t_np,
        "speedup_vs_numpy": t_np / t_sparse,
        "speedup_vs_dense_kernel": t_dense / t_sparse,
        "kernel_over_first_gemm": t_sparse / t_gemm,
        "max_abs_diff_sparse_vs_dense": err,
    }


def bench_torch(n, d, m, repeat, rows):
    """The torch backend on the CPU beside the numba kernel, case (a)'s shapes."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        return
    rng = np.random.default_rng(0)
    mu64 = rng.uniform(-1, 1, (n, d))
    for dtype in (np.float32, np.float64):
        rows.append(_torch_case(mu64, dtype, m, repeat, rng, torch.get_num_threads()))


def _torch_case(mu64, dtype, m, repeat, rng, threads):
    n, d = mu64.shape
    t = 0.5
    ref = EmpiricalDistribution(mu64.astype(dtype))
    tor = EmpiricalDistribution(mu64.astype(dtype), backend="torch")
    a, s2 = float(ref.schedule.alpha(t)), float(ref.schedule.sigma2(t))
    mu = ref._mu_as(dtype)
    x = (a * mu[rng.integers(0, n, m)] + np.sqrt(s2) * rng.standard_normal((m, d))).astype(dtype)
    ref.score(x[:8], t)
    tor.score(x[:8], t)
    t_gemm = _best_time(lambda: x @ mu.T, repeat)
    t_numba = _best_time(lambda: ref.score(x, t), repeat)
    t_torch = _best_time(lambda: tor.score(x, t), repeat)
    err = float(np.abs(tor.score(x, t) - ref.score(x, t)).max())
    flops = 4.0 * m * n * d
    return {
        **_case_keys("empirical_score_torch_cpu", dtype, n, d, m),
        "t": t,
        "gemm_gflops": 2.0 * m * n * d / t_gemm / 1e9,
        "kernel_s": t_torch,
        "numba_s": t_numba,
        "torch_over_numba_speed": t_numba / t_torch,
        "fraction_of_gemm": flops / t_torch / (2.0 * m * n * d / t_gemm),
        "torch_threads": threads,
        "max_abs_diff": err,
    }


def bench_blas_pools(n, d, m, repeat, rows, chunks=(None, 2048)):
    """Case (f): both products of a chunk in one BLAS, against the first product in numpy's."""
    from statphys_diffusion._kernels import streaming

    emp, x, a, s2 = _collapsed_data(n, d, m, 4.0, np.float64)
    mu = emp._mu_as(np.float64)
    args = _stream_args(emp, x, a, s2)
    streaming.streaming_iso(*args)  # compile
    t_gemm = _best_time(lambda: x @ mu.T, repeat)

    def numpy_cross(out, xb, mu_c):
        np.matmul(xb, mu_c.T, out=out)

    for chunk in chunks:
        one = _best_time(lambda c=chunk: streaming.streaming_iso(*args, sparse=False, chunk=c), repeat)
        real = streaming._gemm_cross
        streaming._gemm_cross = numpy_cross
        try:
            two = _best_time(lambda c=chunk: streaming.streaming_iso(*args, sparse=False, chunk=c), repeat)
        finally:
            streaming._gemm_cross = real
        rows.append(
            {
                **_case_keys("empirical_score_blas_pools", np.float64, n, d, m),
                "t": 4.0,
                "chunk": chunk if chunk is not None else "default",
                "first_gemm_s": t_gemm,
                "kernel_s": one,
                "kernel_numpy_first_product_s": two,
                "fraction_of_gemm": 2.0 * t_gemm / one,
                "fraction_of_gemm_numpy_first_product": 2.0 * t_gemm / two,
            }
        )


def main(argv=None) -> list[dict]:
    out = Path(__file__).parent / "results" / "kernels.csv"
    args = _bench.parser(__doc__, out, "small sizes (seconds), checks the pipeline only").parse_args(argv)
    rows: list[dict] = []
    if args.quick:
        bench_large(2000, 256, 64, 1, rows)
        bench_small(10_000, 8, 1, rows)
        bench_collapsed(2000, 256, 64, 1, rows)
        bench_collapsed(2000, 256, 64, 1, rows, times=(0.05, 1.0), label="t_sweep")
        bench_torch(2000, 256, 64, 1, rows)
        bench_blas_pools(2000, 256, 64, 1, rows, chunks=(None, 512))
    else:
        bench_large(50_000, 3072, 1024, args.repeat, rows)
        bench_small(1_000_000, 8, args.repeat, rows)
        bench_collapsed(20_000, 3072, 512, args.repeat, rows)
        bench_collapsed(20_000, 3072, 512, args.repeat, rows, times=(0.05, 0.5, 1.0, 2.0, 4.0), label="t_sweep")
        bench_torch(50_000, 3072, 1024, args.repeat, rows)
        bench_blas_pools(20_000, 3072, 512, args.repeat, rows)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    _bench.write_table(rows, args.out, tag="benchmark")
    return rows


if __name__ == "__main__":
    main()
