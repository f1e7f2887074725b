"""Results 2 and 4 on trained networks: memorisation, spurious states and local dimension versus N.

For each training-set size N (CIFAR-10 at 16 x 16, a random subset of N training
images) one "tiny" UNet is trained (cached by configuration hash under --runs,
resumable) and measured:

1. Samples (DDIM, 50 steps): the nearest-neighbour distance ratio |x - NN1| / |x - NN2|
   against its N training images; memorised when below 1/3 (Wilson 95% interval).
2. Attractor census of the network's denoiser at one noise level (snr = 8.6, DDPM
   step ~100 of the linear schedule): x <- D_t(x) from held-out test images and from
   noised training images; fixed points are training points, spurious (stable, not a
   training point) or unstable.
3. Local dimension: the spectrum of the symmetric part of the denoiser Jacobian at a
   small time (snr 99, DDPM step ~28) around noised test images (dense 768 x 768 Jacobian),
   counted as eigenvalues above 1/2, next to the exact empirical model of the same N
   images (its Jacobian is alpha / sigma^2 times the posterior covariance) and the
   annealed prediction sd.geometric_memorization for Gaussian data with the CIFAR-10
   16 x 16 covariance spectrum.

The exact empirical model is the reference "perfectly trained" network: it memorises
at every N. What the package predicts for a network is (Pham et al. 2025) that
spurious states peak where memorisation gives way to generalisation; the script puts
the N of the spurious peak next to the N where the memorised fraction crosses 1/2.

Jobs run through sd.run_sweep: locally by default, on a Dask cluster with --scheduler.
Each job's result is cached (figures/.. is written from the cache), so a killed run
resumes. Usage:
    python validation/network_memorization.py [--quick] [--scheduler tcp://...] [--runs runs]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _networks  # noqa: E402

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion._io import write_rows_csv  # noqa: E402

FIGURES = Path(__file__).resolve().parents[1] / "figures"
ROOT = Path(__file__).resolve().parents[1]
CENSUS_SNR = 0.896 / 0.104  # DDPM linear schedule near step 100: alpha_bar ~ 0.896
JACOBIAN_SNR = 0.99 / 0.01  # near step 28 (alpha_bar ~ 0.99)


def _empirical_jacobian_eigs(train: np.ndarray, x: np.ndarray, t: float, schedule) -> np.ndarray:
    """Eigenvalues of J = alpha / sigma^2 Cov_w[y] for the exact empirical model at each row of x."""
    emp = sd.EmpiricalDistribution(train, schedule=schedule)
    w = emp.component_posterior(x, t)
    a, s2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    out = []
    for wi in w:
        mean = wi @ train
        c = (train - mean).T @ (wi[:, None] * (train - mean))
        out.append(np.linalg.eigvalsh(a / s2 * c)[::-1])
    return np.array(out)


def job(cfg: dict) -> dict:
    """Train (or reuse) the network for one N and measure it; JSON-serialisable result."""
    import torch

    from statphys_diffusion import datasets
    from statphys_diffusion.nets import TrainConfig
    from statphys_diffusion.nets.run import cached_run, load_run
    from statphys_diffusion.samplers import DDIM

    t0 = time.time()
    n = int(cfg["N"])
    torch.set_num_threads(int(cfg.get("threads", 2)))
    train_ds = datasets.load_cifar10(None, "train", n=n, size=cfg["size"], seed=0, progress=False)
    tc = TrainConfig(steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"], seed=0)
    run = cached_run(
        cfg["runs"], dataset=train_ds, progress=False, size=cfg["size"], n=n, config=cfg["config"], train_config=tc
    )
    model, meta = load_run(run)
    sch = model.schedule
    train = _networks.flat_points(train_ds.images)
    rng = np.random.default_rng(cfg["seed"])
    res = {"N": n, "run": str(Path(run).name), "steps": cfg["steps"]}
    # 1. samples and the distance-ratio test
    draws = DDIM(cfg["sample_steps"], progress=False).sample(model, n=cfg["n_samples"], rng=rng)
    nn = sd.nearest_neighbours(draws.x, train, k=2)
    frac, lo, hi = sd.memorized_fraction(nn.ratio, method="wilson")
    res.update(memorized=frac, memorized_lo=lo, memorized_hi=hi, median_ratio=float(np.median(nn.ratio)))
    res["distinct_copied"] = int(np.unique(nn.indices[nn.ratio < 1 / 3, 0]).size)
    # 2. census of the network's denoiser
    t_c = float(sch.t_of_snr(CENSUS_SNR))
    a, s = float(sch.alpha(t_c)), float(sch.sigma(t_c))
    test = _networks.flat_points(datasets.load_cifar10(None, "test", size=cfg["size"], progress=False).images)
    cues = test[rng.choice(test.shape[0], cfg["n_cues"], replace=False)]
    noised = train[rng.integers(0, n, cfg["n_cues"])] + (s / a) * rng.standard_normal((cfg["n_cues"], train.shape[1]))
    census = sd.attractor_census(
        model, t_c, np.vstack([cues, noised]), train=train, max_iter=cfg["census_iter"], tol=1e-5, rng=rng
    )
    res.update({f"census_{k}": v for k, v in census.summary().items()})
    exact = sd.attractor_census(
        sd.EmpiricalDistribution(train, schedule=sch),
        t_c,
        np.vstack([cues, noised]),
        max_iter=cfg["census_iter"],
        rng=rng,
    )
    res.update({f"exact_census_{k}": v for k, v in exact.summary().items()})
    # 3. local dimension from the Jacobian spectrum at small t
    t_j = float(sch.t_of_snr(JACOBIAN_SNR))
    aj, sj = float(sch.alpha(t_j)), float(sch.sigma(t_j))
    q = aj * test[rng.choice(test.shape[0], cfg["n_jacobian"], replace=False)]
    q += sj * rng.standard_normal(q.shape)
    net_eigs = []
    for xq in q:
        jac = model.dense_jacobian(xq, t_j)
        net_eigs.append(np.linalg.eigvalsh(0.5 * (jac + jac.T))[::-1])
    net_eigs = np.array(net_eigs)
    emp_eigs = _empirical_jacobian_eigs(train, q, t_j, sch)
    res["t_census"], res["t_jacobian"] = t_c, t_j
    res["net_local_dim"] = float((net_eigs > 0.5).sum(1).mean())
    res["emp_local_dim"] = float((emp_eigs > 0.5).sum(1).mean())
    res["net_eigs_mean"] = net_eigs.mean(0)[:64].tolist()
    res["emp_eigs_mean"] = emp_eigs.mean(0)[:64].tolist()
    res["seconds"] = time.time() - t0
    return res


def _predicted_local_dim(ns, size: int) -> tuple[list, list]:
    """Annealed prediction with the CIFAR-10 covariance spectrum (Gaussian model) at the Jacobian snr."""
    from statphys_diffusion import datasets
    from statphys_diffusion.report import SCHEDULES

    x = _networks.flat_points(datasets.load_cifar10(None, "train", size=size, progress=False).images)
    xc = x - x.mean(0)
    ev = np.clip(np.linalg.eigvalsh(xc.T @ xc / (x.shape[0] - 1))[::-1], 0, None)
    ev = ev[ev > 1e-12 * ev[0]]
    sch = SCHEDULES["ddpm-linear"]()
    t_j = float(sch.t_of_snr(JACOBIAN_SNR))
    a, s2 = float(sch.alpha(t_j)), float(sch.sigma2(t_j))
    exact = a * ev / (a * a * ev + s2)
    dims, dims_exact = [], []
    for n in ns:
        rho = sd.geometric_memorization(n, ev, t_j, sch).retained[0]
        dims.append(int(np.sum(rho * exact > 0.5)))
        dims_exact.append(int(np.sum(exact > 0.5)))
    return dims, dims_exact


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="two small N, few steps: checks the pipeline, not the science")
    p.add_argument("--out", default=str(FIGURES))
    p.add_argument("--runs", default=str(ROOT / "runs"), help="root of the cached training runs")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local)")
    p.add_argument("--workers", type=int, default=1, help="local processes (each trains one network)")
    p.add_argument("--steps", type=int, default=4000, help="training steps per network (full mode)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ns = [2, 8] if args.quick else [2, 8, 32, 128, 512, 2048]
    base = {
        "size": 16,
        "config": "tiny",
        "steps": 40 if args.quick else args.steps,
        "batch_size": 64,
        "lr": 2e-3,
        "sample_steps": 10 if args.quick else 50,
        "n_samples": 16 if args.quick else 200,
        "n_cues": 8 if args.quick else 64,
        "census_iter": 30 if args.quick else 300,
        "n_jacobian": 2 if args.quick else 8,
        "seed": 0,
        "runs": str(Path(args.runs) / ("quick" if args.quick else "memorization")),
        "threads": 2,
    }
    configs = [dict(base, N=n) for n in ns]
    cache = Path(base["runs"]) / "results"
    t0 = time.time()
    results = sd.run_sweep(
        job, configs, cache_dir=cache, scheduler=args.scheduler, workers=args.workers, desc="networks"
    )
    pred_dim, exact_dim = _predicted_local_dim(ns, base["size"])
    rows = []
    for r, pd, ed in zip(results, pred_dim, exact_dim):
        row = {k: v for k, v in r.items() if not isinstance(v, list)}
        row["predicted_local_dim"] = pd
        row["exact_model_local_dim_infinite_N"] = ed
        rows.append(row)
    tag = "_quick" if args.quick else ""
    write_rows_csv(out / f"network_memorization{tag}.csv", rows)
    mem = np.array([r["memorized"] for r in rows])
    spur = np.array([r["census_n_spurious"] for r in rows])
    cross = next((rows[i]["N"] for i in range(len(rows)) if mem[i] < 0.5), None)
    summary = {
        "quick": args.quick,
        "config": {k: v for k, v in base.items() if k != "runs"},
        "N": ns,
        "memorized_half_crossing_N": cross,
        "spurious_peak_N": int(rows[int(np.argmax(spur))]["N"]),
        "seconds": time.time() - t0,
        "version": sd.__version__,
    }
    _plot(rows, results, out / f"network_memorization{tag}.png")
    (out / f"network_memorization{tag}.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps(summary, indent=2, default=float))
    return summary


def _plot(rows, results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["N"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    mem = [r["memorized"] for r in rows]
    err = [
        [max(0.0, m - r["memorized_lo"]) for m, r in zip(mem, rows)],
        [max(0.0, r["memorized_hi"] - m) for m, r in zip(mem, rows)],
    ]
    ax.errorbar(ns, mem, yerr=err, fmt="o-", label="samples memorised (ratio < 1/3)")
    ax.plot(ns, [1 - m for m in mem], "s--", label="samples not copies (generalising)")
    ax.set_xscale("log")
    ax.set_xlabel("N training images")
    ax.set_ylabel("fraction of samples")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Network samples vs training set (Wilson 95%)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(ns, [r["census_n_memorized"] for r in rows], "o-", label="network: training points as attractors")
    ax.plot(ns, [r["census_n_spurious"] for r in rows], "s-", label="network: spurious attractors")
    ax.plot(ns, [r["exact_census_n_memorized"] for r in rows], "o:", color="grey", label="exact empirical: training")
    ax.plot(ns, [r["exact_census_n_spurious"] for r in rows], "s:", color="k", label="exact empirical: spurious")
    ax.set_xscale("log")
    ax.set_xlabel("N training images")
    ax.set_ylabel("distinct attractors found")
    ax.set_title(f"Census of x <- D_t(x) at t = {rows[0]['t_census']:.3g} (snr {CENSUS_SNR:.3g})", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(ns, [r["net_local_dim"] for r in rows], "o-", label="network")
    ax.plot(ns, [r["emp_local_dim"] for r in rows], "s:", color="grey", label="exact empirical model")
    ax.plot(ns, [r["predicted_local_dim"] for r in rows], "k--", label="annealed prediction (Gaussian, CIFAR spectrum)")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("N training images")
    ax.set_ylabel("eigenvalues of sym(dD/dx) > 1/2")
    ax.set_title(f"Local dimension at t = {rows[0]['t_jacobian']:.3g} around noised test images", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Tiny UNets trained on N CIFAR-10 images (16 x 16)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
