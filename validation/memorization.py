"""Results 2 and 4: collapse, attractors, memorised samples and lost tangent directions.

Parts (all by default; choose with --part):

collapse   isotropic Gaussian data in d = 200: the mean weight of the point of
           origin over (N, t) for the exact empirical model, the measured
           collapse time (origin weight 1/2) against the annealed prediction
           log N = 1/2 sum_k log(1 + snr lambda_k); fresh (held-out) queries
           beside them; and the CIFAR-10 empirical model (N = 50,000) against
           the prediction from its covariance spectrum.
census     attractors of the exact empirical denoiser x <- D_t(x) (isotropic
           Gaussian data, d = 20) from fresh data points: memorised and
           spurious attractors and their basins versus N and t.
samples    DDPM ancestral samples of the empirical model: nearest-neighbour
           ratio, memorised fraction, and the collapse time along trajectories
           (last change of the nearest training point) against the prediction.
geometric  Gaussian data on a 4-dimensional linear manifold in d = 30 with
           variances 4, 1, 1/4, 1/16: projections of the empirical denoiser's
           Jacobian on each tangent direction relative to the exact manifold
           model, versus N and t.

Writes CSV and PNG files into figures/. Usage:
    python validation/memorization.py [--quick] [--part collapse|census|samples|geometric|all]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion._io import write_rows_csv
from statphys_diffusion.samplers import DDPMAncestral

FIGURES = Path(__file__).resolve().parents[1] / "figures"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_log_ticks(ax, ticks) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


# ------------------------------------------------------------------------- collapse
def part_collapse(out: Path, quick: bool) -> dict:
    plt = _plt()
    d = 200
    ns = [30, 100, 300, 1000] if quick else [30, 100, 300, 1000, 3000, 10000, 30000]
    ts = np.geomspace(0.3, 4.0, 16 if quick else 40)
    rng = np.random.default_rng(0)
    rows, summary = [], []
    weight = np.empty((len(ns), ts.size))
    for i, n in enumerate(ns):
        emp = sd.EmpiricalDistribution(rng.standard_normal((n, d)))
        pred = sd.collapse_time(n, np.ones(d))
        tr = sd.posterior_collapse(emp, ts, n=100 if quick else 300, rng=rng)
        fr = sd.posterior_collapse(emp, ts, queries=rng.standard_normal((100 if quick else 300, d)), rng=rng)
        weight[i] = tr.origin_weight
        summary.append(
            {
                "N": n,
                "t_C_predicted": pred,
                "t_C_measured_origin": tr.measured_collapse_time(),
                "t_C_measured_fresh_participation_2": fr.measured_collapse_time(),
            }
        )
        for j, t in enumerate(ts):
            rows.append(
                {
                    "N": n,
                    "t": t,
                    "origin_weight": tr.origin_weight[j],
                    "origin_weight_se": tr.origin_weight_stderr[j],
                    "participation_training": tr.participation[j],
                    "participation_fresh": fr.participation[j],
                    "entropy_fresh": fr.entropy[j],
                }
            )
        print(summary[-1], flush=True)
    write_rows_csv(out / "collapse_phase.csv", rows)
    write_rows_csv(out / "collapse_times.csv", summary)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    mesh = ax.pcolormesh(ts, ns, weight, shading="nearest", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label="mean weight of the point of origin")
    n_fine = np.geomspace(ns[0], ns[-1], 100)
    ax.plot([sd.collapse_time(int(n), np.ones(d)) for n in n_fine], n_fine, "w--", label="predicted t_C")
    ax.plot([s["t_C_measured_origin"] for s in summary], ns, "ro", ms=4, label="measured (weight 1/2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax, [0.3, 0.5, 1, 2, 4])
    ax.set_xlabel("OU time t")
    ax.set_ylabel("N training points")
    ax.set_title(f"Memorisation phase diagram, Gaussian data d = {d}")
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[1]
    ax.plot(ns, [s["t_C_predicted"] for s in summary], "k-", label="predicted (annealed)")
    ax.plot(ns, [s["t_C_measured_origin"] for s in summary], "o", label="measured: origin weight 1/2")
    ax.plot(
        ns,
        [s["t_C_measured_fresh_participation_2"] for s in summary],
        "s",
        label="measured, fresh queries: participation 2",
    )
    ax.set_xscale("log")
    ax.set_xlabel("N")
    ax.set_ylabel("collapse time t_C (OU)")
    ax.set_title("Collapse time versus N")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "collapse_phase.png", dpi=120)
    plt.close(fig)
    result = {"isotropic_d200": summary, "cifar": _collapse_cifar(out, quick)}
    return result


def _collapse_cifar(out: Path, quick: bool) -> dict:
    from statphys_diffusion import datasets

    path = datasets.find_cifar10()
    if path is None:
        return {"skipped": "CIFAR-10 not found"}
    ds = datasets.load_cifar10_zip(path, "train", progress=False, max_per_class=100 if quick else None)
    x = ds.as_points()
    xc = x - x.mean(0)
    lam = np.clip(np.linalg.eigvalsh(xc.T @ xc / (x.shape[0] - 1)), 0, None)
    emp = sd.EmpiricalDistribution(x)
    pred = sd.collapse_time(x.shape[0], lam)
    ts = np.geomspace(0.2, 4.0, 12 if quick else 30)
    t0 = time.time()
    rng = np.random.default_rng(1)
    tr = sd.posterior_collapse(emp, ts, n=50 if quick else 200, rng=rng, progress=True)
    rows = [
        {"t": t, "origin_weight": w, "se": s, "participation": p}
        for t, w, s, p in zip(ts, tr.origin_weight, tr.origin_weight_stderr, tr.participation)
    ]
    write_rows_csv(out / "collapse_cifar.csv", rows)
    res = {
        "N": int(x.shape[0]),
        "t_C_predicted": pred,
        "t_C_measured_origin": tr.measured_collapse_time(),
        "t_S": sd.speciation_time(top_eigenvalue=float(lam[-1]), schedule=sd.OrnsteinUhlenbeck()),
        "seconds": time.time() - t0,
    }
    print(res, flush=True)
    return res


# --------------------------------------------------------------------------- census
def part_census(out: Path, quick: bool) -> dict:
    plt = _plt()
    d = 20
    ns = [10, 30, 100] if quick else [10, 30, 100, 300, 1000]
    ts = np.geomspace(0.05, 3.0, 6 if quick else 14)
    rng = np.random.default_rng(2)
    rows = []
    for n in ns:
        emp = sd.EmpiricalDistribution(rng.standard_normal((n, d)))
        starts = rng.standard_normal((200 if quick else 600, d))  # fresh data points as cues
        for t in ts:
            c = sd.attractor_census(emp, t, starts, rng=rng)
            rows.append({"N": n, "t_C_predicted": sd.collapse_time(n, np.ones(d)), **c.summary()})
        print(rows[-1], flush=True)
    write_rows_csv(out / "census.csv", rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, n in enumerate(ns):
        sel = [r for r in rows if r["N"] == n]
        t = [r["t"] for r in sel]
        axes[0].plot(t, [r["n_memorized"] / n for r in sel], "-o", ms=3, color=f"C{i}", label=f"N = {n}")
        axes[0].plot(t, [r["basin_spurious"] for r in sel], ":", color=f"C{i}")
        axes[1].plot(t, [r["n_spurious"] for r in sel], "-o", ms=3, color=f"C{i}", label=f"N = {n}")
        axes[0].axvline(sel[0]["t_C_predicted"], color=f"C{i}", lw=0.6, ls="--")
    axes[0].set_ylabel("memorised attractors / N (solid); spurious basin (dotted)")
    axes[0].set_title("Training points found as attractors (dashed: predicted t_C)")
    axes[1].set_ylabel("number of spurious attractors")
    axes[1].set_title("Spurious states")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("OU time t")
        ax.legend(fontsize=7)
    fig.suptitle(f"Attractor census of the exact empirical denoiser, Gaussian data d = {d}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "census.png", dpi=120)
    plt.close(fig)
    return {"rows": len(rows)}


# -------------------------------------------------------------------------- samples
def part_samples(out: Path, quick: bool) -> dict:
    plt = _plt()
    d = 200
    rng = np.random.default_rng(3)
    rows = []
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, n in enumerate([100, 1000] if quick else [100, 1000, 10000]):
        train = rng.standard_normal((n, d))
        emp = sd.EmpiricalDistribution(train)
        res = DDPMAncestral(100 if quick else 400).sample(
            emp, n=50 if quick else 200, t_start=4.0, t_end=1e-3, rng=rng, return_trajectory=True
        )
        nn = sd.nearest_neighbours(res.x, train)
        frac, lo, hi = sd.memorized_fraction(nn.ratio, rng=rng)
        _, w_lo, w_hi = sd.memorized_fraction(nn.ratio, method="wilson")
        t_c, _ = sd.trajectory_collapse_times(res.trajectory, res.times, train, emp.schedule)
        fresh = sd.nearest_neighbours(rng.standard_normal((200, d)), train)
        rows.append(
            {
                "N": n,
                "memorized_fraction": frac,
                "ci_low": lo,
                "ci_high": hi,
                "wilson_low": w_lo,
                "wilson_high": w_hi,
                "fresh_memorized_fraction": sd.memorized_fraction(fresh.ratio)[0],
                "median_ratio": float(np.median(nn.ratio)),
                "trajectory_t_C_median": float(np.median(t_c)),
                "trajectory_t_C_q10": float(np.quantile(t_c, 0.1)),
                "trajectory_t_C_q90": float(np.quantile(t_c, 0.9)),
                "t_C_predicted": sd.collapse_time(n, np.ones(d)),
            }
        )
        print(rows[-1], flush=True)
        ax.hist(t_c, bins=30, histtype="step", color=f"C{i}", label=f"N = {n}")
        ax.axvline(rows[-1]["t_C_predicted"], color=f"C{i}", ls="--", lw=1)
    ax.set_xlabel("last change of the nearest training point (OU t)")
    ax.set_ylabel("chains")
    ax.set_title(f"Collapse along DDPM chains, d = {d} (dashed: predicted t_C)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "collapse_trajectories.png", dpi=120)
    plt.close(fig)
    write_rows_csv(out / "memorized_samples.csv", rows)
    return {"rows": rows}


# ------------------------------------------------------------------------ geometric
def part_geometric(out: Path, quick: bool) -> dict:
    plt = _plt()
    rng = np.random.default_rng(4)
    lam = np.array([4.0, 1.0, 0.25, 0.0625])
    man = sd.LinearManifold.random(30, 4, lam, rng)
    ns = [30, 300, 3000] if quick else [10, 30, 100, 300, 1000, 3000, 10000]
    ts = [0.003, 0.03, 0.3] if quick else [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    rows = []
    for n in ns:
        emp = sd.EmpiricalDistribution(man.sample(n, 0.0, rng).x0)
        for t in ts:
            q = man.sample(100 if quick else 400, t, rng).x
            tj = sd.tangent_jacobian(emp, t, q, man.basis, n_normal_probes=0)
            ratio = tj.ratio(man.denoiser_jacobian_eigenvalues(t))
            med = np.median(tj.tangent, axis=0) / man.denoiser_jacobian_eigenvalues(t)
            rows.append(
                {
                    "N": n,
                    "t": t,
                    **{f"mean_ratio_lambda_{v:g}": r for v, r in zip(lam, ratio)},
                    **{f"median_ratio_lambda_{v:g}": r for v, r in zip(lam, med)},
                }
            )
    write_rows_csv(out / "geometric_memorization.csv", rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, v in enumerate(lam):
        for ax, stat in zip(axes, ("mean", "median")):
            for j, t in enumerate(ts):
                sel = [r for r in rows if r["t"] == t]
                ax.plot(
                    [r["N"] for r in sel],
                    [r[f"{stat}_ratio_lambda_{v:g}"] for r in sel],
                    color=f"C{k}",
                    alpha=0.3 + 0.7 * j / max(1, len(ts) - 1),
                    marker="o",
                    ms=2,
                    label=f"lambda = {v:g}" if j == len(ts) - 1 else None,
                )
    for ax, stat in zip(axes, ("mean", "median")):
        ax.axhline(1.0, color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N training points")
        ax.set_ylabel(f"{stat} u_k^T J u_k / exact")
        ax.set_title(f"{stat} over queries (darker: larger t, t = {ts[0]:g} to {ts[-1]:g})")
        ax.legend(fontsize=7)
    fig.suptitle("Tangent directions of a 4-dim linear manifold in d = 30: empirical vs exact denoiser", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "geometric_memorization.png", dpi=120)
    plt.close(fig)
    return {"rows": len(rows)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: checks the pipeline, not the science")
    p.add_argument("--part", default="all", choices=["all", "collapse", "census", "samples", "geometric"])
    p.add_argument("--out", default=str(FIGURES))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"quick": args.quick, "version": sd.__version__}
    parts = (("collapse", part_collapse), ("census", part_census), ("samples", part_samples))
    for part, fn in parts + (("geometric", part_geometric),):
        if args.part in ("all", part):
            summary[part] = fn(out, args.quick)
    (out / f"memorization_{args.part}.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps(summary, indent=2, default=float))
    return summary


if __name__ == "__main__":
    main()
