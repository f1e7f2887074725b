"""The probability-flow log-likelihood of a wrapped network: the vjp path against the old hvp path.

``sd.flow_log_likelihood`` needs eps^T H eps for every Rademacher probe. It used to take it from
``hvp`` (one jvp and one vjp of the denoiser, on all probes of all points as one batch); a quadratic
form sees only the symmetric part of J, so one vjp per probe gives the same number, and the adapter
now chunks Jacobian products at ``product_batch_size`` rows (at most 256 on the CPU). Measured here in
the same run on the class-conditional ``small`` UNet (16 x 16 x 3, untrained weights: the cost does not
depend on them), float32, 2 threads:

- baseline: the hvp path (``products="hvp"``), products in one batch (``product_batch_size=batch_size``);
- vjp only, one batch; vjp in chunks of 256 (the new default): one evaluation of the flow's velocity and
  divergence at M points with P probes, and the products alone at M * P rows (jvp, vjp per chunk size).

Usage: python benchmarks/bench_flow_likelihood.py [--points 64] [--probes 16] [--repeat 3]
       [--out benchmarks/results/flow_likelihood.csv]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np


def _best(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--probes", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the test suite)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/flow_likelihood.csv"))
    args = ap.parse_args(argv)
    import torch

    import statphys_diffusion as sd
    from statphys_diffusion.nets import TorchScoreModel, build

    torch.manual_seed(0)
    torch.set_num_threads(2)
    size, config = (8, "tiny") if args.quick else (16, "small")
    net = build(config, in_channels=3, n_classes=4).eval()
    sch = sd.DiscreteSchedule.linear(1000)
    model = TorchScoreModel(net, sch, image_shape=(3, size, size), classes=np.arange(4))
    rng = np.random.default_rng(0)
    m, p, d = args.points, args.probes, model.dim
    x = rng.standard_normal((m, d))
    xs, vs = np.tile(x, (p, 1)), rng.choice([-1.0, 1.0], size=(m * p, d))
    # one flow step's evaluation = flow_log_likelihood with n_steps=1 (three velocity-divergence evaluations)
    one_step = {"n_steps": 1, "n_probes": p, "y": 2, "rng": 0}
    rows = []

    def run(name, fn, chunk):
        model.product_batch_size = chunk
        rows.append({"what": name, "rows": m * p, "chunk": chunk, "seconds": _best(fn, args.repeat)})
        print(f"{name:<40} chunk {chunk:>5}: {rows[-1]['seconds']:.3f} s", flush=True)

    big = model.batch_size
    run(
        "flow step, hvp path (baseline)",
        lambda: sd.flow_log_likelihood(model, x, 150.0, products="hvp", **one_step),
        big,
    )
    run("flow step, vjp path", lambda: sd.flow_log_likelihood(model, x, 150.0, **one_step), big)
    run("flow step, vjp path", lambda: sd.flow_log_likelihood(model, x, 150.0, **one_step), 256)
    for chunk in (big, 256, 64):
        run("jvp", lambda: model.jvp(xs, 150.0, vs, y=2), chunk)
        run("vjp", lambda: model.vjp(xs, 150.0, vs, y=2), chunk)
    # the two paths estimate the same number (the same probes): float32 rounding apart
    model.product_batch_size = 256
    ll_hvp = sd.flow_log_likelihood(model, x, 150.0, products="hvp", **one_step)
    ll_vjp = sd.flow_log_likelihood(model, x, 150.0, **one_step)
    diff = float(np.max(np.abs(ll_hvp - ll_vjp)) / max(1.0, float(np.max(np.abs(ll_hvp)))))
    print(f"flow step: relative difference of the two paths' log-likelihoods {diff:.1e}")
    base = rows[0]["seconds"]
    for r in rows:
        r["ratio_to_baseline"] = base / r["seconds"] if r["what"].startswith("flow") else float("nan")
        r["relative_diff_of_paths"] = diff
    print(f"flow step: vjp path in chunks of 256 is {base / rows[2]['seconds']:.1f}x the baseline")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


if __name__ == "__main__":
    main()
