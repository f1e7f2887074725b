"""GPU benchmark of the torch backend, each number beside a baseline measured in the same run.

On one CUDA GPU (under 5 minutes at the default sizes):

(a) the exact empirical score at CIFAR-10 scale (N = 50,000, d = 3,072, M = 1,024),
    ``EmpiricalDistribution(..., backend="torch", device="cuda")``, float32 and float64, in the
    dense (t = 2: every weight counts) and the collapsed regime (t = 0.02: one point per row): the
    kernel does 4 M N d flops, reported as a fraction of the GPU's own GEMM rate on the same
    shapes (``x @ mu.T``, same dtype, same run), and against the same torch backend on the
    CPU (the speed-up the GPU buys);
(b) ``nearest_neighbours(..., backend="torch", device="cuda")`` on the same shapes, against
    the GEMM alone and against the CPU;
(c) the patch models ELS and LS (``backend="torch"``) on CIFAR-10-shaped data at 16 x 16, N = 5,000,
    k = 5, M = 64 images, float32 and float64: useful flops 2 R K (D + C) (R query windows, K
    candidates, D = C k^2) as a fraction of the GEMM rate on the kernel's shapes, and against the
    package's CPU kernel (numba) in the same run;
(d) training throughput (images per second) of the ``small`` UNet (batch 64, 16 x 16 x 3, EDM
    objective, Adam) on the GPU against the CPU, same run.

Without a GPU it prints why and exits cleanly, writing nothing (``--quick`` then runs the
pipeline on the CPU at small sizes, for the test suite). Every timing is the best of
``--repeat`` after a warm-up call; the inputs and outputs are numpy arrays, so each timing
includes the host-device transfer of x and of the result (not of the training points,
which the model keeps on the device).

Usage: python benchmarks/bench_gpu.py [--quick] [--repeat 3] [--out benchmarks/results/gpu.csv]
"""

from __future__ import annotations

import functools
import platform
import time
from pathlib import Path

import numpy as np

from statphys_diffusion import (
    EmpiricalDistribution,
    EquivariantLocalEmpirical,
    LocalEmpirical,
    _bench,
    nearest_neighbours,
)


def _best(fn, repeat: int, sync) -> float:
    return _bench.best_of(fn, repeat, warm_up=True, sync=sync)[0]


def _gemm_rate(torch, x, mu, device, repeat, sync) -> float:
    xt = torch.as_tensor(x, device=device)
    mt = torch.as_tensor(mu, device=device)
    t = _best(lambda: xt @ mt.T, repeat, sync)
    return 2.0 * x.shape[0] * mu.shape[0] * x.shape[1] / t


def _device_name(torch, device) -> str:
    return torch.cuda.get_device_name(0) if str(device).startswith("cuda") else platform.processor() or "cpu"


def _empirical(torch, device, n, d, m, dtype, repeat, sync, cpu_too: bool) -> list[dict]:
    rng = np.random.default_rng(0)
    mu = rng.uniform(-1, 1, (n, d)).astype(dtype)
    dev = EmpiricalDistribution(mu, backend="torch", device=device)
    cpu = EmpiricalDistribution(mu, backend="torch", device="cpu") if cpu_too else None
    gemm = _gemm_rate(torch, mu[:m], mu, device, repeat, sync)
    rows = []
    for regime, t in (("dense", 2.0), ("collapsed", 0.02)):
        a, s2 = float(dev.schedule.alpha(t)), float(dev.schedule.sigma2(t))
        x = (a * mu[rng.integers(0, n, m)] + np.sqrt(s2) * rng.standard_normal((m, d))).astype(dtype)
        t_dev = _best(functools.partial(dev.score, x, t), repeat, sync)
        row = {"case": "empirical score", "regime": regime, "dtype": np.dtype(dtype).name, "N": n, "d": d, "M": m,
               "gemm_tflops": gemm / 1e12, "seconds": t_dev,
               "fraction_of_gemm": 4.0 * m * n * d / t_dev / gemm}  # fmt: skip
        if cpu is not None:
            t_cpu = _best(functools.partial(cpu.score, x, t), 1, lambda: None)
            diff = float(np.abs(dev.score(x, t) - cpu.score(x, t)).max())
            row.update(cpu_seconds=t_cpu, speedup_over_cpu=t_cpu / t_dev, max_abs_diff_vs_cpu=diff)
        rows.append(row)
    x = mu[rng.integers(0, n, m)] + 0.1 * rng.standard_normal((m, d)).astype(dtype)
    t_nn = _best(lambda: nearest_neighbours(x, mu, k=2, backend="torch", device=device), repeat, sync)
    row = {"case": "nearest neighbours", "regime": "-", "dtype": np.dtype(dtype).name, "N": n, "d": d, "M": m,
           "gemm_tflops": gemm / 1e12, "seconds": t_nn, "fraction_of_gemm": 2.0 * m * n * d / t_nn / gemm}  # fmt: skip
    if cpu_too:
        t_cpu = _best(lambda: nearest_neighbours(x, mu, k=2, backend="torch"), 1, lambda: None)
        row.update(cpu_seconds=t_cpu, speedup_over_cpu=t_cpu / t_nn)
    rows.append(row)
    return rows


def _patches(torch, device, n, m, dtype, repeat, sync) -> list[dict]:
    """ELS and LS on the device (torch backend) against the CPU kernel (numba), k = 5 at 16 x 16 x 3."""
    rng = np.random.default_rng(0)
    c, side, k = 3, 16, 5
    train = rng.uniform(-1, 1, (n, c, side, side)).astype(dtype)
    train = (train + np.roll(train, 1, axis=2) + np.roll(train, 1, axis=3)) / 3
    x = rng.standard_normal((m, c * side * side)).astype(dtype)
    rows = []
    for name, cls, cand in (("ELS", EquivariantLocalEmpirical, n * (side - k + 1) ** 2), ("LS", LocalEmpirical, n)):
        dev = cls(train, patch_size=k, backend="torch", device=device)
        cpu = cls(train, patch_size=k)
        r = m * side * side  # query windows
        # the kernel's own product shape: (query windows) x (a chunk of candidates) x D
        probe = min(cand, 8192)
        gemm = _gemm_rate(torch, rng.standard_normal((min(r, 4096), c * k * k)).astype(dtype),
                          rng.standard_normal((probe, c * k * k)).astype(dtype), device, repeat, sync)  # fmt: skip
        useful = 2.0 * r * cand * (c * k * k + c)
        for regime, t in (("dense", 2.0), ("collapsed", 0.02)):
            t_dev = _best(functools.partial(dev.denoise, x, t), repeat, sync)
            t_cpu = _best(functools.partial(cpu.denoise, x, t), 1, lambda: None)
            diff = float(np.abs(dev.denoise(x, t) - cpu.denoise(x, t)).max())
            rows.append({"case": f"{name} denoiser", "regime": regime, "dtype": np.dtype(dtype).name, "N": n,
                         "d": c * side * side, "M": m, "gemm_tflops": gemm / 1e12, "seconds": t_dev,
                         "fraction_of_gemm": useful / t_dev / gemm, "cpu_seconds": t_cpu,
                         "speedup_over_cpu": t_cpu / t_dev, "max_abs_diff_vs_cpu": diff})  # fmt: skip
    return rows


def _training(torch, device, steps: int, sync) -> list[dict]:
    """Images per second of the small UNet's training step (EDM objective, Adam), device against CPU."""
    from statphys_diffusion.nets import build

    def rate(dev) -> float:
        torch.manual_seed(0)
        net = build("small").to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x0 = torch.randn(64, 3, 16, 16, device=dev)

        def step():
            t = torch.rand(64, device=dev) * 999 + 1
            noise = torch.randn_like(x0)
            loss = ((net(x0 + 0.5 * noise, t) - noise) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        step()
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        return 64 * steps / (time.perf_counter() - t0)

    on_dev = rate(device)
    on_cpu = rate(torch.device("cpu")) if str(device) != "cpu" else on_dev
    return [{"case": "small UNet training", "regime": "-", "dtype": "float32", "N": 64, "d": 768, "M": steps,
             "images_per_s": on_dev, "cpu_images_per_s": on_cpu, "speedup_over_cpu": on_dev / on_cpu}]  # fmt: skip


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
    n_patch, m_patch = (12, 1) if args.quick else (5000, 64)
    repeat = 1 if args.quick else args.repeat
    rows: list[dict] = []
    for dtype in (np.float32, np.float64):
        rows += _empirical(torch, device, n, d, m, dtype, repeat, sync, cpu_too=has_gpu)
    for dtype in (np.float32, np.float64):
        rows += _patches(torch, device, n_patch, m_patch, dtype, repeat, sync)
    rows += _training(torch, device, 1 if args.quick else 50, sync)
    for r in rows:
        r["device"] = _device_name(torch, device)
    _bench.write_table(rows, args.out, tag="device")
    return rows


if __name__ == "__main__":
    main()
