"""Patch-model benchmarks (ELS and LS), side by side with a straightforward torch ``unfold`` baseline.

ELS on CIFAR-10-shaped data at 16 x 16 (3 channels), N = 5,000 training images, k = 5, M = 16
noisy images (4,096 query windows), float32 (``--quick``: N = 500, M = 4):

(a) the package's streaming kernel (``backend="numba"``: BLAS GEMMs + the numba online softmax) and its
    torch twin (``backend="torch"``, CPU), against a baseline written the obvious way in torch: every
    candidate patch unfolded at once (the (N (H-k+1)(W-k+1), C k^2) matrix), ``torch.cdist`` squared
    distances to all query windows, a softmax and one product with the centre pixels, in blocks of
    query rows so that the (rows x candidates) logits fit memory. Same inputs, same outputs (checked).
(b) the fraction of the machine's GEMM rate, measured in the same run on the kernel's own shapes
    (scipy's sgemm on a (4,096 x chunk) x (chunk x C k^2) product): the kernel's useful flops are
    2 R K D (cross terms) + 2 R K C (centre values), R query windows, K candidates, D = C k^2.
    Regimes: dense (t = 2: no weight is cut) and collapsed (t = 0.02: one patch per row).
(c) LS on the same data (N candidates at each of the H W positions) against the same baseline
    restricted to one position at a time.
Peak extra memory: tracemalloc for the numpy kernel (numpy's allocations; the inputs excluded); the
baseline's is the size of its unfolded patch matrix plus one block of logits (torch's allocations are
not traced), reported as computed.

Usage: python benchmarks/bench_patches.py [--quick] [--out benchmarks/results/patches.csv]
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
from scipy.linalg import blas

import statphys_diffusion as sd
from statphys_diffusion import _bench

_best = _bench.best_of


def _baseline_els(train, x, a, s2, k, block=1024):
    """The straightforward torch ELS: unfold everything, cdist, softmax, product (module docstring)."""
    import torch

    tt = torch.as_tensor(train)
    xt = torch.as_tensor(x)
    n, c, h, w = tt.shape
    r = k // 2
    cand = tt.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
    centres = tt[:, :, r : h - r, r : w - r].permute(0, 2, 3, 1).reshape(-1, c)
    xp = torch.nn.functional.pad(xt, (r, r, r, r), mode="circular")
    q = xp.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
    out = torch.empty((q.shape[0], c), dtype=tt.dtype)
    for r0 in range(0, q.shape[0], block):
        d2 = torch.cdist(q[r0 : r0 + block], a * cand) ** 2
        out[r0 : r0 + block] = torch.softmax(-d2 / (2 * s2), dim=1) @ centres
    m = xt.shape[0]
    return out.reshape(m, h, w, c).permute(0, 3, 1, 2).reshape(m, -1).numpy(), cand.numel() * cand.element_size()


def _baseline_ls(train, x, a, s2, k):
    import torch

    tt = torch.as_tensor(train)
    xt = torch.as_tensor(x)
    n, c, h, w = tt.shape
    r = k // 2
    tp = torch.nn.functional.pad(tt, (r, r, r, r))
    xp = torch.nn.functional.pad(xt, (r, r, r, r))
    out = torch.empty_like(xt)
    for i in range(h):
        for j in range(w):
            keys = tp[:, :, i : i + k, j : j + k].reshape(n, -1)
            q = xp[:, :, i : i + k, j : j + k].reshape(xt.shape[0], -1)
            d2 = torch.cdist(q, a * keys) ** 2
            out[:, :, i, j] = torch.softmax(-d2 / (2 * s2), dim=1) @ tt[:, :, i, j]
    return out.reshape(xt.shape[0], -1).numpy()


def _gemm_rate(rows: int, cols: int, depth: int, dtype, repeat: int) -> float:
    """Flop rate of scipy's GEMM on (rows x depth) @ (depth x cols), the kernel's own product shape."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, depth)).astype(dtype)
    b = rng.standard_normal((cols, depth)).astype(dtype)
    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    c = np.empty((cols, rows), dtype=dtype, order="F")
    t, _ = _best(lambda: gemm(1.0, b.T, a.T, trans_a=1, beta=0.0, c=c, overwrite_c=True), repeat)
    return 2.0 * rows * cols * depth / t


def main(argv=None) -> list[dict]:
    args = _bench.parser(__doc__, Path(__file__).parent / "results" / "patches.csv", "N = 500, M = 4").parse_args(argv)
    import torch

    n, m = (500, 4) if args.quick else (5000, 16)
    k, c, side = 5, 3, 16
    dtype = np.float32
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (n, c, side, side)).astype(dtype)
    # images with CIFAR-like pixel correlations: a smoothed random field (so patches are not all alike)
    train = (train + np.roll(train, 1, axis=2) + np.roll(train, 1, axis=3)) / 3
    ou = sd.OrnsteinUhlenbeck()
    meta = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "quick": bool(args.quick),
    }
    rows = []
    n_cand = n * (side - k + 1) ** 2
    d = c * k * k
    els = sd.EquivariantLocalEmpirical(train, patch_size=k)
    els_t = sd.EquivariantLocalEmpirical(train, patch_size=k, backend="torch")
    for regime, t in (("dense", 2.0), ("collapsed", 0.02)):
        a, s2 = float(ou.alpha(t)), float(ou.sigma2(t))
        x = (a * train[:m] + np.sqrt(s2) * rng.standard_normal((m, c, side, side))).astype(dtype)
        els.denoise(x, t)  # compile

        def ours(x=x, t=t):
            return els.denoise(x, t)

        def torch_backend(x=x, t=t):
            return els_t.denoise(x, t)

        def baseline(x=x, a=a, s2=s2):
            return _baseline_els(train, x, a, s2, k)

        t_numba, d_numba = _best(ours, args.repeat)
        t_torch, d_torch = _best(torch_backend, args.repeat)
        t_base, (d_base, cand_bytes) = _best(baseline, args.repeat)
        err = float(max(np.abs(d_numba - d_base).max(), np.abs(d_torch - d_base).max()))
        mem = _bench.peak_mib(ours)
        r_rows = m * side * side
        flops = 2.0 * r_rows * n_cand * (d + c)
        gemm = _gemm_rate(min(r_rows, 4096), 4096, d, dtype, args.repeat)
        base_mem = (cand_bytes + 1024 * n_cand * 4) / 2**20
        rows.append(
            {
                "model": "ELS",
                "regime": regime,
                "t": t,
                "N": n,
                "k": k,
                "M": m,
                "numba_s": t_numba,
                "torch_backend_s": t_torch,
                "unfold_baseline_s": t_base,
                "speedup_vs_baseline": t_base / t_numba,
                "fraction_of_gemm_rate": flops / t_numba / gemm,
                "gemm_gflops": gemm / 1e9,
                "peak_mib": mem,
                "baseline_mib": base_mem,
                "max_abs_diff": err,
                **meta,
            }
        )
    # LS: one position at a time, N candidates each
    t = 0.5
    a, s2 = float(ou.alpha(t)), float(ou.sigma2(t))
    x = (a * train[:m] + np.sqrt(s2) * rng.standard_normal((m, c, side, side))).astype(dtype)
    ls = sd.LocalEmpirical(train, patch_size=k)
    ls.denoise(x, t)
    t_ls, d_ls = _best(lambda: ls.denoise(x, t), args.repeat)
    t_lb, d_lb = _best(lambda: _baseline_ls(train, x, a, s2, k), args.repeat)
    flops = 2.0 * m * side * side * n * (d + c)
    rows.append(
        {
            "model": "LS",
            "regime": "mixed",
            "t": t,
            "N": n,
            "k": k,
            "M": m,
            "numba_s": t_ls,
            "torch_backend_s": float("nan"),
            "unfold_baseline_s": t_lb,
            "speedup_vs_baseline": t_lb / t_ls,
            "fraction_of_gemm_rate": flops / t_ls / _gemm_rate(m, n, d, dtype, args.repeat),
            "gemm_gflops": float("nan"),
            "peak_mib": _bench.peak_mib(lambda: ls.denoise(x, t)),
            "baseline_mib": float("nan"),
            "max_abs_diff": float(np.abs(d_ls - d_lb).max()),
            **meta,
        }
    )
    _bench.write_table(rows, args.out)
    return rows


if __name__ == "__main__":
    main()
