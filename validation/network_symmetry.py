"""Result 5 on a trained network: the central fixed point's instability and Gaussian late initialisation.

The network of validation/_networks.py (CIFAR-10 16 x 16, DDPM linear schedule, times
in its step units) used unconditionally, against the exact empirical model of its
50,000 training images in the same schedule:

1. The central fixed point of the reverse SDE drift, F(x) = a_t x + s_t(x) = 0
   (a_t the stiffness of theory.symmetry_breaking), of the exact model by Newton with
   MINRES on Hessian-vector products, and the top eigenvalue of the Hessian of log p_t
   there: exact, and the network's at the same point (Lanczos on the symmetric part of
   (alpha J - I) / sigma^2 through the adapter's jvp/vjp; Newton on the float32 network
   itself does not converge in reasonable time, so its relative residual |F_net| / |a x|
   at the exact centre is reported instead). The centre is unstable once
   lambda_max + a_t > 0; the crossing is the symmetry-breaking time, shown with the
   speciation time t_S of the data's top covariance eigenvalue.
2. Few-step DDIM (5, 10, 20, 50 steps) from the standard start and from the Gaussian
   late initialisation (sd.gaussian_late_init of the training set at t_late = t_S),
   over seeds: FD_own against test images (the evaluation classifier's features;
   Inception weights are not available here) and the mean distance from each sample
   to its nearest training image.

Writes figures/network_symmetry*.{csv,png,json}. Usage:
    python validation/network_symmetry.py [--quick] [--runs runs]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _networks  # noqa: E402

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion import theory as th  # noqa: E402
from statphys_diffusion._io import write_rows_csv  # noqa: E402
from statphys_diffusion.metrics import frechet_distance  # noqa: E402
from statphys_diffusion.samplers import DDIM  # noqa: E402


def _crossing(ts, margin) -> float:
    """Largest t where the margin changes sign (log-linear interpolation); NaN if it never does."""
    ts, m = np.asarray(ts), np.asarray(margin)
    idx = np.flatnonzero(np.sign(m[:-1]) != np.sign(m[1:]))
    if idx.size == 0:
        return float("nan")
    i = idx[-1]
    f = m[i] / (m[i] - m[i + 1])
    return float(np.exp(np.log(ts[i]) + f * (np.log(ts[i + 1]) - np.log(ts[i]))))


def _top_eigenvalue(model, x, t: float) -> float:
    """Largest eigenvalue of the network's symmetrised Hessian at x (Lanczos, float32-level tolerance)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    d = x.size

    def mv(v):
        return model.hvp(x[None], t, np.asarray(v, dtype=np.float64)[None])[0]

    return float(eigsh(LinearOperator((d, d), matvec=mv, dtype=float), k=1, which="LA", tol=1e-4, ncv=20)[0][0])


def main(argv=None):
    args = _networks.parser(__doc__, "the quick network, few times and samples: the pipeline only").parse_args(argv)
    import torch

    from statphys_diffusion import datasets
    from statphys_diffusion.nets import classifier as clf

    torch.set_num_threads(2)
    cfg, out = _networks.setup(args)
    t0 = time.time()
    model, meta = _networks.conditional_network(cfg)
    sch = model.schedule
    train = _networks.training_set(cfg)
    x_train = _networks.flat_points(train.images)
    exact = sd.EmpiricalDistribution(x_train, schedule=sch)
    mean = x_train.mean(axis=0)
    top_cov = float(np.linalg.eigvalsh(np.cov(x_train, rowvar=False))[-1])
    t_s = th.speciation_time(schedule=sch, top_eigenvalue=top_cov)
    ts = np.geomspace(30.0, 900.0, 5 if args.quick else 18)
    rows = []
    for t in ts:
        a_t = float(th.stiffness(sch, t, "sde"))
        al, s2 = float(sch.alpha(t)), float(sch.sigma2(t))
        guess = al * mean / (1.0 - a_t * s2)
        row = {"t": t, "stiffness": a_t}
        try:
            xc = th.central_fixed_point(exact, t, x0=guess)
        except ValueError as err:  # no centre is a result too
            row.update(exact_lambda_max=np.nan, exact_margin=np.nan, network_lambda_max=np.nan, network_margin=np.nan)
            row["note"] = str(err)[:80]
            rows.append(row)
            continue
        lam = float(th.top_hessian_eigenpairs(exact, xc, t, 1)[0][0])
        row.update(exact_lambda_max=lam, exact_margin=lam + a_t, centre_offset=float(np.linalg.norm(xc - guess)))
        # the network at the exact centre: Lanczos on its symmetrised Hessian, and how far from a fixed point it is
        lam_net = float(_top_eigenvalue(model, xc, t))
        resid = a_t * xc + model.score(xc[None], t)[0]
        row.update(
            network_lambda_max=lam_net,
            network_margin=lam_net + a_t,
            network_residual_rel=float(np.linalg.norm(resid) / np.linalg.norm(a_t * xc)),
        )
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    tag = "_quick" if args.quick else ""
    write_rows_csv(out / f"network_symmetry{tag}.csv", rows)
    t_sb = {n: _crossing(ts, [r[f"{n}_margin"] for r in rows]) for n in ("exact", "network")}
    seconds_sb = time.time() - t0
    # Gaussian late initialisation against the standard start, few-step DDIM
    net = _networks.evaluation_classifier(cfg)
    test = datasets.load_cifar10(cfg["data"], "test", size=cfg["size"], progress=False)
    f_test = clf.features(net, _networks.net_images(test.images))
    gli = sd.gaussian_late_init(x_train, t_s, schedule=sch)
    n = 64 if args.quick else 500
    seeds = 1 if args.quick else 3
    step_list = [5, 10] if args.quick else [5, 10, 20, 50]
    c, h = meta["in_channels"], meta["size"]
    gl_rows = []
    for k in step_list:
        for init in ("standard", "GLI"):
            vals = []
            for seed in range(seeds):
                rng = np.random.default_rng(100 * k + seed)
                if init == "standard":
                    res = DDIM(k, progress=False).sample(model, n=n, rng=rng)
                else:
                    res = DDIM(k, progress=False).sample(model, gli.sample(n, rng), t_start=t_s, rng=rng)
                x = np.clip(res.x, -1, 1)
                f = clf.features(net, x.reshape(-1, c, h, h).astype(np.float32))
                nn = sd.nearest_neighbours(x, x_train, k=2)
                vals.append((frechet_distance(f, f_test), float(nn.distances[:, 0].mean()), float(np.median(nn.ratio))))
            v = np.array(vals)
            se = v.std(axis=0, ddof=1) / np.sqrt(seeds) if seeds > 1 else np.full(3, np.nan)
            gl_rows.append(
                {
                    "steps": k,
                    "init": init,
                    "seeds": seeds,
                    "n": n,
                    "fd_own": v[:, 0].mean(),
                    "fd_own_se": se[0],
                    "nn_distance": v[:, 1].mean(),
                    "nn_distance_se": se[1],
                    "nn_ratio_median": v[:, 2].mean(),
                    "t_start": t_s if init == "GLI" else sch.t_max,
                }
            )
            print(gl_rows[-1], flush=True)
    write_rows_csv(out / f"network_gli{tag}.csv", gl_rows)
    rng = np.random.default_rng(0)
    perm = rng.permutation(f_test.shape[0])
    floor = frechet_distance(f_test[perm[:n]], f_test[perm[n:]])
    summary = {
        "quick": args.quick,
        "t_S": t_s,
        "top_covariance_eigenvalue": top_cov,
        "t_symmetry_breaking_exact": t_sb["exact"],
        "t_symmetry_breaking_network": t_sb["network"],
        "fd_own_floor": floor,
        "seconds_symmetry": seconds_sb,
        "seconds": time.time() - t0,
        "version": sd.__version__,
    }
    (out / f"network_symmetry{tag}.json").write_text(json.dumps(summary, indent=2, default=float))
    _plot(rows, gl_rows, summary, out / f"network_symmetry{tag}.png")
    print(json.dumps(summary, indent=2, default=float))
    return rows, gl_rows, summary


def _plot(rows, gl_rows, summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    ts = [r["t"] for r in rows]
    for name, style in (("exact", "k-o"), ("network", "C1-s")):
        ax.plot(
            ts,
            [r[f"{name}_margin"] for r in rows],
            style,
            ms=3,
            label=f"{name} (exact empirical)" if name == "exact" else "network",
        )
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(summary["t_S"], color="C2", ls="--", label=f"t_S = {summary['t_S']:.0f}")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("t (DDPM step)")
    ax.set_ylabel("lambda_max(H_t) + a_t at the centre")
    ax.set_title("Stability of the central fixed point (> 0: unstable)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    for init, col in (("standard", "C0"), ("GLI", "C3")):
        sel = [r for r in gl_rows if r["init"] == init]
        ax.errorbar(
            [r["steps"] for r in sel],
            [r["fd_own"] for r in sel],
            [r["fd_own_se"] for r in sel],
            fmt="o-",
            color=col,
            label=init,
        )
    ax.axhline(summary["fd_own_floor"], color="k", ls=":", lw=1, label="test-vs-test floor")
    ax.set_xscale("log")
    ax.set_xlabel("DDIM steps")
    ax.set_ylabel("FD_own to test images")
    ax.set_title(f"Gaussian late initialisation at t_S = {summary['t_S']:.0f}", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Symmetry breaking on a DDPM trained on CIFAR-10 16 x 16", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
