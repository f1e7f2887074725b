"""GPU benchmark of the torch backend, each number beside a baseline measured in the same run.

On one CUDA GPU (under 5 minutes at the default sizes):

(a) the exact empirical score at CIFAR-10 scale (N = 50,000, d = 3,072, M = 1,024),
    ``EmpiricalDistribution(..., backend="torch", device="cuda")``, float32 and float64: the
    kernel does 4 M N d flops, reported as a fraction of the GPU's own GEMM rate on the same
    shapes (``x @ mu.T``, same dtype, same run), and against the same torch backend on the
    CPU (the speed-up the GPU buys);
(b) ``nearest_neighbours(..., backend="torch", device="cuda")`` on the same shapes, against
    the GEMM alone and against the CPU.

Without a GPU it prints why and exits cleanly, writing nothing (``--quick`` then runs the
pipeline on the CPU at small sizes, for the test suite). Every timing is the best of
``--repeat`` after a warm-up call; the inputs and outputs are numpy arrays, so each timing
includes the host-device transfer of x and of the result (not of the training points,
which the model keeps on the device).

Usage: python benchmarks/bench_gpu.py [--quick] [--repeat 3] [--out benchmarks/results/gpu.csv]
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from statphys_diffusion import EmpiricalDistribution, _bench, nearest_neighbours


def _best(fn, repeat: int, sync) -> float:
    fn()
    sync()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def _gemm_rate(torch, x, mu, device, repeat, sync) -> float:
    xt = torch.as_tensor(x, device=device)
    mt = torch.as_tensor(mu, device=device)
    t = _best(lambda: xt @ mt.T, repeat, sync)
    return 2.0 * x.shape[0] * mu.shape[0] * x.shape[1] / t


def _case(torch, device, n, d, m, dtype, repeat, sync, cpu_too: bool) -> list[dict]:
    rng = np.random.default_rng(0)
    mu = rng.uniform(-1, 1, (n, d)).astype(dtype)
    t = 0.5
    dev = EmpiricalDistribution(mu, backend="torch", device=device)
    a, s2 = float(dev.schedule.alpha(t)), float(dev.schedule.sigma2(t))
    x = (a * mu[rng.integers(0, n, m)] + np.sqrt(s2) * rng.standard_normal((m, d))).astype(dtype)
    gemm = _gemm_rate(torch, x, mu, device, repeat, sync)
    t_dev = _best(lambda: dev.score(x, t), repeat, sync)
    t_nn = _best(lambda: nearest_neighbours(x, mu, k=2, backend="torch", device=device), repeat, sync)
    row = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if str(device).startswith("cuda") else platform.processor(),
        "dtype": np.dtype(dtype).name,
        "N": n,
        "d": d,
        "M": m,
        "gemm_tflops": gemm / 1e12,
        "score_s": t_dev,
        "score_fraction_of_gemm": 4.0 * m * n * d / t_dev / gemm,
        "nearest_s": t_nn,
        "nearest_fraction_of_gemm": 2.0 * m * n * d / t_nn / gemm,
    }
    if cpu_too:
        cpu = EmpiricalDistribution(mu, backend="torch", device="cpu")
        t_cpu = _best(lambda: cpu.score(x, t), 1, lambda: None)
        t_nn_cpu = _best(lambda: nearest_neighbours(x, mu, k=2, backend="torch"), 1, lambda: None)
        row.update(
            score_cpu_s=t_cpu,
            score_speedup_over_cpu=t_cpu / t_dev,
            nearest_cpu_s=t_nn_cpu,
            nearest_speedup_over_cpu=t_nn_cpu / t_nn,
            max_abs_diff_vs_cpu=float(np.abs(dev.score(x, t) - cpu.score(x, t)).max()),
        )
    return [row]


def main(argv=None) -> list[dict]:
    out = Path(__file__).parent / "results" / "gpu.csv"
    quick_help = "small sizes; without a GPU, runs on the CPU (pipeline only)"
    args = _bench.parser(__doc__, out, quick_help).parse_args(argv)
    try:
        import torch
    except ImportError:
        print("bench_gpu: torch is not installed; skipped")
        return []
    has_gpu = torch.cuda.is_available()
    if not has_gpu and not args.quick:
        print("bench_gpu: no CUDA GPU available; skipped (the torch backend is tested on the CPU)")
        return []
    device = torch.device("cuda" if has_gpu else "cpu")
    sync = torch.cuda.synchronize if has_gpu else (lambda: None)
    n, d, m = (2000, 256, 64) if args.quick else (50_000, 3072, 1024)
    rows: list[dict] = []
    for dtype in (np.float32, np.float64):
        rows += _case(torch, device, n, d, m, dtype, 1 if args.quick else args.repeat, sync, cpu_too=has_gpu)
    _bench.write_table(rows, args.out)
    return rows


if __name__ == "__main__":
    main()
