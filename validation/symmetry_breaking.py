"""Result 5: spontaneous symmetry breaking, speciation and Gaussian late initialisation.

Parts (all by default; choose with --part):

toy   two deltas at +-1 in 1-D under OU: the potential u_t at several times, the
      bifurcation diagram of the reverse-SDE fixed points against the paper's
      tanh equation, the stability margin lambda_max(H_t) + a_t of the centre for
      the three definitions with their closed-form critical times, and
      speciation by cloning against t_S and the exact overlap.
gli   Gaussian late initialisation versus the standard start for few-step DDIM
      and Heun (PF-ODE) on the DDPM linear schedule, with exact scores, on a 2-D
      mixture and on a class-Gaussian model of CIFAR-10 at 16 x 16 (d = 768).
      Quality: sliced W1 to exact draws and mean log-likelihood under the true
      model; mean and standard error over seeds.
cifar symmetry-breaking times of the exact empirical CIFAR-10 model (N = 50,000,
      d = 3,072) against t_S, also as DDPM steps.
cifar_class  the same for the class-Gaussian approximation (10 full covariances).

Writes CSV and PNG files into figures/. Usage:
    python validation/symmetry_breaking.py [--quick] [--part toy|gli|cifar|all]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion import theory as th
from statphys_diffusion._io import write_rows_csv
from statphys_diffusion.metrics import sliced_wasserstein
from statphys_diffusion.samplers import DDIM, Heun

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _driver  # noqa: E402


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- toy
@dataclass(frozen=True)
class Config:
    """One mode's sizes: FULL made the committed outputs, QUICK checks the pipeline."""

    mode: str
    bifurcation_times: int
    cloning_times: int
    cloning_pairs: int
    cloning_steps: int
    gli_steps: tuple  # sampler step counts of the GLI comparison
    gli_seeds: int
    gli_n: int  # samples per seed, 2-D mixture
    gli_cifar: bool  # also the class-Gaussian CIFAR model at 16 x 16
    cifar_max_per_class: int | None  # None: all 50,000 images
    scan_grid: int  # stability-margin scan points
    class_gaussian_size: int  # image side of the class-Gaussian CIFAR model


FULL = Config("full", 240, 16, 4000, 800, (5, 10, 20, 50), 5, 4000, True, None, 32, 32)
QUICK = Config("quick", 60, 8, 500, 200, (5, 10), 2, 1000, False, 100, 24, 8)


def part_toy(out: Path, cfg: Config) -> dict:
    plt = _plt()
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.0, labels=[0, 1])
    crit = {dyn: th.symmetry_breaking_time(gm, dyn) for dyn in th.DYNAMICS}
    closed = {dyn: -0.5 * np.log(th.two_delta_critical_alpha2(1.0, dyn)) for dyn in ("sde", "potential")}
    t_s = sd.speciation_time(gm)

    # potential u_t(x) at several times
    fig, ax = plt.subplots(figsize=(5, 3.6))
    xs = np.linspace(-2, 2, 801)[:, None]
    for t, c in zip((0.15, 0.3, closed["potential"], 0.5, 0.8), ("C0", "C1", "k", "C2", "C3")):
        u = th.potential(gm, xs, t)
        ax.plot(
            xs[:, 0],
            u - u.min(),
            color=c,
            lw=1.5 if c != "k" else 1,
            ls="-" if c != "k" else "--",
            label=f"t = {t:.3g}" + (" (loss of convexity)" if c == "k" else ""),
        )
    ax.set_ylim(0, 3)
    ax.set_xlabel("x")
    ax.set_ylabel("u_t(x) - min u_t")
    ax.set_title("Potential of two deltas at +-1 (OU)")
    ax.legend(fontsize=7)
    _driver.save_figure(fig, out / "sb_potential.png", dpi=120)

    # bifurcation diagram
    rows = []
    ts = np.linspace(0.05, 1.0, cfg.bifurcation_times)
    for t in ts:
        pts, eig = th.fixed_points_1d(gm, t, "sde")
        ref = th.two_delta_broken_fixed_points(float(np.exp(-t)))
        for p, e in zip(pts, eig):
            rows.append({"t": t, "fixed_point": p, "drift_eigenvalue": e, "stable": bool(e < 0)})
        if ref.size != pts.size or np.max(np.abs(np.sort(ref) - pts)) > 1e-9:
            raise RuntimeError(f"fixed points disagree with the tanh equation at t={t}")
    write_rows_csv(out / "sb_bifurcation.csv", rows)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    st = [r for r in rows if r["stable"]]
    un = [r for r in rows if not r["stable"]]
    ax.plot([r["t"] for r in st], [r["fixed_point"] for r in st], "o", ms=2, color="C0", label="stable")
    ax.plot([r["t"] for r in un], [r["fixed_point"] for r in un], "o", ms=2, color="C3", label="unstable")
    ax.axvline(closed["sde"], color="k", ls="--", lw=1, label=f"t_c (SDE) = {closed['sde']:.4f}")
    ax.axvline(t_s, color="gray", ls=":", lw=1, label=f"t_S = {t_s:.4f}")
    ax.set_xlabel("t (OU)")
    ax.set_ylabel("fixed points of x + 2 s_t(x)")
    ax.set_title("Bifurcation of the reverse-SDE drift")
    ax.legend(fontsize=7)
    _driver.save_figure(fig, out / "sb_bifurcation.png", dpi=120)

    # stability margin of the centre for each definition
    fig, ax = plt.subplots(figsize=(5, 3.6))
    tgrid = np.geomspace(0.02, 3.0, 200)
    h0 = gm.hessian(np.zeros((1, 1)), 0.5)  # compile
    del h0
    lam = np.array([gm.hessian(np.zeros((1, 1)), t)[0, 0, 0] for t in tgrid])
    margin_rows = []
    for dyn, c in zip(th.DYNAMICS, ("C0", "C1", "C2")):
        a = np.array([float(th.stiffness(gm.schedule, t, dyn)) for t in tgrid])
        ax.plot(tgrid, lam + a, color=c, label=f"{dyn}: lambda_max + a_t")
        if np.isfinite(crit[dyn].time):
            ax.axvline(crit[dyn].time, color=c, ls="--", lw=1)
        margin_rows += [{"dynamics": dyn, "t": t, "margin": m} for t, m in zip(tgrid, lam + a)]
    write_rows_csv(out / "sb_margin.csv", margin_rows)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-1.5, 3)
    ax.set_xlabel("t (OU)")
    ax.set_ylabel("lambda_max(H_t) + a_t at x = 0")
    ax.set_title("Stability of the centre (>0: unstable)")
    ax.legend(fontsize=7)
    _driver.save_figure(fig, out / "sb_margin.png", dpi=120)

    # cloning
    gmc = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.0, labels=[0, 1])
    tb = np.geomspace(0.05, 2.5, cfg.cloning_times)
    n_pairs = cfg.cloning_pairs
    clo = th.cloning_agreement(
        gmc, tb, n_pairs, rng=np.random.default_rng(0), n_steps=cfg.cloning_steps, t_start=6.0, t_end=1e-3
    )
    exact = th.exact_cloning_agreement(gmc, tb, 20000, rng=np.random.default_rng(1))
    write_rows_csv(
        out / "sb_cloning.csv",
        [
            {"t_branch": t, "phi_cloning": p, "se": s, "phi_exact": e, "se_exact": es, "n_pairs": n_pairs}
            for t, p, s, e, es in zip(clo.branch_times, clo.phi, clo.phi_stderr, exact.phi, exact.phi_stderr)
        ],
    )
    fig, ax = plt.subplots(figsize=(5, 3.6))
    clo.plot(ax, label="cloning (reverse SDE)")
    ax.plot(exact.branch_times, exact.phi, color="k", lw=1, label="exact E[sum_c p(c|x)^2]")
    ax.axvline(t_s, color="gray", ls=":", label=f"t_S = {t_s:.3f}")
    ax.axvline(crit["sde"].time, color="C3", ls="--", label=f"t_c SDE = {crit['sde'].time:.3f}")
    ax.axvline(crit["potential"].time, color="C2", ls="--", label=f"t_c potential = {crit['potential'].time:.3f}")
    _driver.style(
        ax,
        xlabel="branching time t_b (OU)",
        ylabel="P(both copies in the same class)",
        title="Speciation by cloning, deltas at +-1",
        xlog=True,
    )
    _driver.save_figure(fig, out / "sb_cloning.png", dpi=120)
    half = float(np.interp(0.75, clo.phi[::-1], clo.branch_times[::-1]))
    return {
        "t_c_sde": crit["sde"].time,
        "t_c_sde_closed_form": closed["sde"],
        "t_c_potential": crit["potential"].time,
        "t_c_potential_closed_form": closed["potential"],
        "t_c_ode": crit["ode"].time,
        "t_S": t_s,
        "t_phi_075_cloning": half,
    }


# --------------------------------------------------------------------------- gli
def mixture_2d(schedule) -> sd.GaussianMixture:
    means = [[-2.0, 0.0], [1.5, 1.0], [0.5, -2.0]]
    covs = [[[0.3, 0.1], [0.1, 0.2]], [[0.2, -0.05], [-0.05, 0.4]], [[0.25, 0.0], [0.0, 0.25]]]
    return sd.GaussianMixture.full(means, covs, [0.3, 0.5, 0.2], labels=[0, 1, 2], schedule=schedule)


def cifar_class_gaussian(size: int, schedule, ridge: float = 1e-4) -> sd.GaussianMixture | None:
    """Per-class mean and covariance of CIFAR-10 train at size x size (area averaging), plus ridge * I."""
    from statphys_diffusion import datasets

    path = datasets.find_cifar10()
    if path is None:
        return None
    ds = datasets.load_cifar10_zip(path, "train", progress=False)
    return datasets.class_gaussian(ds, size, ridge=ridge, schedule=schedule)


def _gli_runs(model, name, steps, seeds, n, t_late, n_ref, rows, progress_label):
    sch = model.schedule
    ref = model.sample(n_ref, 0.0, rng=np.random.default_rng(10_000)).x
    ref_ll = float(model.log_prob(ref, 0.0).mean())
    # noise floor: independent exact draws of the same size against the same reference
    floor = [
        sliced_wasserstein(model.sample(n, 0.0, rng=np.random.default_rng(20_000 + s)).x, ref, rng=0) for s in seeds
    ]
    gli = sd.gaussian_late_init(model, t_late)
    for sampler_cls in (DDIM, Heun):
        for k in steps:
            for init in ("standard", "gli"):
                sw, ll = [], []
                for s in seeds:
                    rng = np.random.default_rng(s)
                    if init == "standard":
                        res = sampler_cls(k).sample(model, n=n, rng=rng)
                    else:
                        res = sampler_cls(k).sample(model, gli.sample(n, rng=rng), t_start=t_late, rng=rng)
                    sw.append(sliced_wasserstein(res.x, ref, rng=0))
                    ll.append(float(model.log_prob(res.x, 0.0).mean()))
                rows.append(
                    {
                        "model": name,
                        "sampler": sampler_cls.__name__,
                        "n_steps": k,
                        "init": init,
                        "t_start": sch.default_t_start if init == "standard" else t_late,
                        "sw1_mean": float(np.mean(sw)),
                        "sw1_se": float(np.std(sw, ddof=1) / np.sqrt(len(sw))),
                        "loglik_mean": float(np.mean(ll)),
                        "loglik_se": float(np.std(ll, ddof=1) / np.sqrt(len(ll))),
                        "exact_loglik": ref_ll,
                        "n_samples": n,
                        "n_seeds": len(seeds),
                        "sw1_floor_mean": float(np.mean(floor)),
                        "sw1_floor_se": float(np.std(floor, ddof=1) / np.sqrt(len(floor))),
                    }
                )
                print(
                    f"{progress_label} {sampler_cls.__name__:>5} {k:>3} steps {init:>8}: SW1 {np.mean(sw):.4f}",
                    flush=True,
                )


def part_gli(out: Path, cfg: Config) -> dict:
    plt = _plt()
    sch = sd.DiscreteSchedule.linear(1000)
    steps = list(cfg.gli_steps)
    seeds = list(range(cfg.gli_seeds))
    rows: list[dict] = []
    summary = {}
    gm = mixture_2d(sch)
    sb = th.symmetry_breaking_time(gm, "sde")
    t_s = sd.speciation_time(gm)
    # this mixture has no symmetry: the tracked centre slides into one basin without losing
    # stability (an imperfect bifurcation), so the linear phase is bounded by t_S instead
    t_late = float(t_s if not np.isfinite(sb.time) else max(sb.time, t_s))
    summary["mixture_2d"] = {"t_c_sde": sb.time, "t_c_note": sb.note, "t_S": t_s, "t_late": t_late}
    _gli_runs(gm, "mixture_2d", steps, seeds, cfg.gli_n, t_late, 4000, rows, "2-D")
    cif = cifar_class_gaussian(16, sch) if cfg.gli_cifar else None
    if cif is not None:
        t_s_c = sd.speciation_time(cif)
        summary["cifar16_class_gaussian"] = {"t_S": t_s_c, "t_late": t_s_c}
        _gli_runs(cif, "cifar16_class_gaussian", steps, seeds[:3], 1000, t_s_c, 2000, rows, "CIFAR")
    write_rows_csv(out / "gli.csv", rows)
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 3.6), squeeze=False)
    for ax, mname in zip(axes[0], models):
        for i, samp in enumerate(("DDIM", "Heun")):
            for init, ls in (("standard", "--"), ("gli", "-")):
                sel = [r for r in rows if r["model"] == mname and r["sampler"] == samp and r["init"] == init]
                ax.errorbar(
                    [r["n_steps"] for r in sel],
                    [r["sw1_mean"] for r in sel],
                    yerr=[r["sw1_se"] for r in sel],
                    ls=ls,
                    marker="o",
                    ms=3,
                    color=f"C{i}",
                    label=f"{samp}, {init}",
                )
        fl = [r for r in rows if r["model"] == mname][0]
        ax.axhspan(
            fl["sw1_floor_mean"] - 2 * fl["sw1_floor_se"],
            fl["sw1_floor_mean"] + 2 * fl["sw1_floor_se"],
            color="gray",
            alpha=0.3,
            lw=0,
            label="exact vs exact (+-2 se)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of steps")
        ax.set_ylabel("sliced W1 to exact draws")
        ax.set_title(f"{mname}: t_late = {summary[mname]['t_late']:.0f} (DDPM steps)", fontsize=9)
        ax.legend(fontsize=7)
    _driver.save_figure(fig, out / "gli.png", dpi=120)
    for mname in models:
        for samp in ("DDIM", "Heun"):
            for k in steps:
                st = [
                    r
                    for r in rows
                    if (r["model"], r["sampler"], r["n_steps"], r["init"]) == (mname, samp, k, "standard")
                ]
                gl = [r for r in rows if (r["model"], r["sampler"], r["n_steps"], r["init"]) == (mname, samp, k, "gli")]
                summary[mname][f"{samp}_{k}_sw1_ratio_standard_over_gli"] = st[0]["sw1_mean"] / gl[0]["sw1_mean"]
    return summary


# --------------------------------------------------------------------------- cifar
def part_cifar(out: Path, cfg: Config) -> dict:
    from statphys_diffusion import datasets

    path = datasets.find_cifar10()
    if path is None:
        print("CIFAR-10 not found: part 'cifar' skipped")
        return {"skipped": "CIFAR-10 not found"}
    ou = sd.OrnsteinUhlenbeck()
    ds = datasets.load_cifar10_zip(path, "train", progress=False, max_per_class=cfg.cifar_max_per_class)
    x = ds.as_points(order="hwc")  # the order its committed outputs were made in
    xc = x - x.mean(0)
    lam_top = float(np.linalg.eigvalsh(xc.T @ xc / (x.shape[0] - 1))[-1])
    t_s = sd.speciation_time(top_eigenvalue=lam_top, schedule=ou)
    emp = sd.EmpiricalDistribution(x, schedule=ou)
    scans: list[dict] = []
    rows = _sb_rows(emp, f"empirical (N={x.shape[0]})", t_s, f"data covariance (N={x.shape[0]})", cfg, scans)
    write_rows_csv(out / "sb_cifar.csv", rows)
    write_rows_csv(out / "sb_cifar_scan.csv", scans)
    _plot_cifar_scans(out)
    return {"rows": rows}


def _plot_cifar_scans(out: Path) -> None:
    """Stability margin of the tracked centre versus t for every CIFAR model scanned so far, with t_S."""
    import csv as _csv

    plt = _plt()
    scans, marks = [], []
    for name in ("sb_cifar", "sb_cifar_class"):
        if (out / f"{name}_scan.csv").is_file():
            scans += list(_csv.DictReader(open(out / f"{name}_scan.csv")))
        if (out / f"{name}.csv").is_file():
            marks += list(_csv.DictReader(open(out / f"{name}.csv")))
    if not scans:
        return
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (label, dyn) in enumerate(dict.fromkeys((r["model"], r["dynamics"]) for r in scans)):
        sel = [r for r in scans if r["model"] == label and r["dynamics"] == dyn]
        ax.plot(
            [float(r["t"]) for r in sel],
            [float(r["margin"]) for r in sel],
            marker="o",
            ms=3,
            ls="-" if dyn == "sde" else "--",
            color=f"C{i // 2}",
            label=f"{label}, {dyn}",
        )
    for r in (m for m in marks if m["quantity"] == "speciation t_S"):
        ax.axvline(float(r["t_ou"]), color="gray", ls=":", lw=1, label=f"t_S ({r['model']}) = {float(r['t_ou']):.3g}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("t (OU)")
    ax.set_ylabel("lambda_max(H_t) + a_t at the tracked centre")
    ax.set_title("CIFAR-10: stability of the central fixed point (>0: unstable)", fontsize=9)
    ax.legend(fontsize=6)
    _driver.save_figure(fig, out / "sb_cifar.png", dpi=120)


def _sb_rows(model, label: str, t_s: float, t_s_label: str, cfg: Config, scans: list | None = None) -> list[dict]:
    """Rows: t_S, then the SDE and potential symmetry-breaking times, each with its DDPM linear index.

    The scanned stability margins are appended to ``scans`` (one row per grid time).
    """
    ou, lin = model.schedule, sd.DiscreteSchedule.linear(1000)
    rows = [{"model": t_s_label, "quantity": "speciation t_S", "t_ou": t_s}]
    for dyn in ("sde", "potential"):
        t0 = time.time()
        # scan down to log-snr 2 (OU t = 0.063, DDPM linear step ~60): the breaks sit far above it
        res = th.symmetry_breaking_time(
            model, dyn, log_snr_range=(-12.0, 2.0), n_grid=cfg.scan_grid, xtol=1e-4, progress=True
        )
        if scans is not None:
            scans += [
                {"model": label, "dynamics": dyn, "t": float(t), "margin": float(m)}
                for t, m in zip(res.times, res.margin)
                if np.isfinite(m)
            ]
        rows.append(
            {
                "model": label,
                "quantity": f"symmetry breaking ({dyn})",
                "t_ou": res.time,
                "seconds": time.time() - t0,
                "note": res.note,
            }
        )
        print(rows[-1], flush=True)
    for r in rows:
        t = r["t_ou"]
        ok = np.isfinite(t) and sd.match_time(t, ou, lin)[0] >= 1
        r["ddpm_linear_index"] = int(sd.time_to_ddpm_index(t, ou, lin)) if ok else ""
    return rows


def part_cifar_class(out: Path, cfg: Config) -> dict:
    """Class-Gaussian approximation of CIFAR-10 (10 full covariances + 1e-4 I) at full resolution."""
    model = cifar_class_gaussian(cfg.class_gaussian_size, sd.OrnsteinUhlenbeck())
    if model is None:
        print("CIFAR-10 not found: part 'cifar_class' skipped")
        return {"skipped": "CIFAR-10 not found"}
    label = f"class-Gaussian (d={model.dim})"
    scans: list[dict] = []
    rows = _sb_rows(model, label, sd.speciation_time(model), label, cfg, scans)
    write_rows_csv(out / "sb_cifar_class.csv", rows)
    write_rows_csv(out / "sb_cifar_class_scan.csv", scans)
    _plot_cifar_scans(out)
    return {"rows": rows}


def main(argv=None):
    parts = {"toy": part_toy, "gli": part_gli, "cifar": part_cifar, "cifar_class": part_cifar_class}
    args = _driver.parts_parser(__doc__, parts).parse_args(argv)
    return _driver.run_parts("symmetry_breaking", parts, args, full=FULL, quick=QUICK)


if __name__ == "__main__":
    main()
