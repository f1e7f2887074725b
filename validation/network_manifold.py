"""Result 4 on networks with synthetic data: tangent directions kept by MLP denoisers trained on N points.

Gaussian data on a 16-dimensional linear manifold in d = 32 (four groups of four
directions with variances 4, 1, 1/4, 1/16; OU schedule). For each N an MLP denoiser
(nets.MLPDenoiser, hidden 256, depth 3) is trained on the N points, and the mean
projection of its denoiser Jacobian on each tangent direction at fresh noisy queries
(sd.tangent_jacobian, central differences of the network's denoiser) is divided by the
exact manifold model's, beside the exact empirical model of the same N points and the
annealed prediction sd.geometric_memorization. Jobs run through sd.run_sweep (cached).

Writes figures/network_manifold{,_quick}.{csv,png,json}. Usage:
    python validation/network_manifold.py [--quick] [--runs runs]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion._io import write_rows_csv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _driver  # noqa: E402

FIGURES = _driver.FIGURES
ROOT = Path(__file__).resolve().parents[1]
VARIANCES = (4.0, 1.0, 0.25, 0.0625)
PER = 4


def _manifold():
    lam = np.repeat(VARIANCES, PER)
    return sd.LinearManifold.random(32, lam.size, lam, np.random.default_rng(0)), lam


def job(cfg: dict) -> dict:
    import torch

    from statphys_diffusion import nets

    torch.set_num_threads(2)
    t0 = time.time()
    man, lam = _manifold()
    rng = np.random.default_rng(cfg["N"])
    train = man.sample(cfg["N"], 0.0, rng).x0
    torch.manual_seed(0)
    net = nets.MLPDenoiser(train.shape[1], hidden=256, depth=3)
    tc = nets.TrainConfig(
        steps=cfg["steps"], batch_size=256, lr=1e-3, ema_decay=0.995, seed=0, checkpoint_every=max(1, cfg["steps"])
    )
    res = nets.train(net, train, man.schedule, tc, progress=False)
    model = nets.TorchScoreModel(res.ema.double(), man.schedule)
    out = {"N": cfg["N"], "t": cfg["t"], "steps": cfg["steps"]}
    q = man.sample(cfg["queries"], cfg["t"], rng).x
    ref = man.denoiser_jacobian_eigenvalues(cfg["t"])
    for name, mdl in (("network", model), ("empirical", sd.EmpiricalDistribution(train, schedule=man.schedule))):
        tj = sd.tangent_jacobian(mdl, q, cfg["t"], man.basis, n_normal_probes=4, rng=rng)
        ratio = tj.ratio(ref)
        for g, v in enumerate(VARIANCES):
            out[f"{name}_ratio_{v:g}"] = float(ratio[g * PER : (g + 1) * PER].mean())
        out[f"{name}_normal"] = float(np.nanmean(tj.normal))
    pred = sd.geometric_memorization(cfg["N"], lam, cfg["t"]).retained[0]
    for g, v in enumerate(VARIANCES):
        out[f"predicted_ratio_{v:g}"] = float(pred[g * PER : (g + 1) * PER].mean())
    out["final_loss"] = float(np.mean(res.losses[-100:]))
    out["seconds"] = time.time() - t0
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="two N, few steps: the pipeline only")
    p.add_argument("--out", default=str(FIGURES))
    p.add_argument("--runs", default=str(ROOT / "runs"))
    p.add_argument("--scheduler", default=None)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ns = [30, 300] if args.quick else [10, 30, 100, 300, 1000, 3000, 10000]
    base = {"t": 0.05, "steps": 50 if args.quick else 6000, "queries": 50 if args.quick else 400}
    configs = [dict(base, N=n) for n in ns]
    tag = "_quick" if args.quick else ""
    t0 = time.time()
    rows = sd.run_sweep(
        job,
        configs,
        cache_dir=Path(args.runs) / f"manifold{tag}",
        scheduler=args.scheduler,
        workers=args.workers,
        desc="manifold networks",
    )
    write_rows_csv(out / f"network_manifold{tag}.csv", rows)
    summary = {"quick": args.quick, "config": base, "N": ns, "seconds": time.time() - t0, "version": sd.__version__}
    (out / f"network_manifold{tag}.json").write_text(json.dumps(summary, indent=2))
    _plot(rows, out / f"network_manifold{tag}.png")
    print(json.dumps(summary, indent=2))
    return rows


def _plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ns = [r["N"] for r in rows]
    for g, v in enumerate(VARIANCES):
        ax.plot(ns, [r[f"network_ratio_{v:g}"] for r in rows], "o-", color=f"C{g}", label=f"network, lambda = {v:g}")
        ax.plot(ns, [r[f"empirical_ratio_{v:g}"] for r in rows], "x:", color=f"C{g}")
        ax.plot(ns, [r[f"predicted_ratio_{v:g}"] for r in rows], "--", color=f"C{g}", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("N training points")
    ax.set_ylabel("mean u_k^T J u_k / exact manifold")
    ax.set_title(
        f"16-dim linear manifold in d = 32, t = {rows[0]['t']:g}\n"
        "(o network, x exact empirical, dashed annealed prediction)",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    _driver.save_figure(fig, path, dpi=120)


if __name__ == "__main__":
    main()
