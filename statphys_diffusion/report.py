"""The ``predict`` report: what the package can predict and measure for a data set.

Each section is a function that takes the prepared data and returns markdown
plus tidy rows; later issues add sections (symmetry breaking, entropy rates,
memorization). Outputs: ``report.md``, ``figures/*.png``, ``results.csv`` (one
row per quantity) and ``results.json`` (resolved configuration, package
version, git commit, seeds).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._io import atomic_write_text, write_rows_csv
from ._progress import iterate
from .conventions import time_to_ddpm_index
from .empirical import EmpiricalDistribution
from .schedules import VPSDE, DiscreteSchedule, OrnsteinUhlenbeck, Schedule
from .theory.information import _posterior_entropy as posterior_entropy

__all__ = ["ReportConfig", "make_report", "SCHEDULES"]

# name -> a callable that builds the schedule with its default parameters
SCHEDULES: dict[str, Callable[[], Schedule]] = {
    "ou": OrnsteinUhlenbeck,
    "ddpm-linear": DiscreteSchedule.linear,
    "ddpm-cosine": DiscreteSchedule.cosine,
    "vpsde": VPSDE,
}


@dataclass
class ReportConfig:
    data: str
    n_train: int
    dim: int
    schedule: str
    seed: int
    n_query: int
    n_times: int
    source: str
    sb_points: int = 1000
    info_draws: int = 1000
    extra: dict = field(default_factory=dict)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _fig_path(out: Path, name: str) -> Path:
    (out / "figures").mkdir(parents=True, exist_ok=True)
    return out / "figures" / name


def spectrum_section(points: np.ndarray, schedule: Schedule, out: Path) -> tuple[str, list[dict]]:
    """Data covariance spectrum and the speciation time t_S of its top direction.

    t_S solves alpha_t^2 Lambda = sigma_t^2 (Biroli, Bonnaire, de Bortoli & Mezard
    2024): before it (in reverse time) the noise dominates every data
    direction; for OU, t_S = 1/2 log(1 + Lambda).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centred = points - points.mean(axis=0)
    cov = centred.T @ centred / max(1, points.shape[0] - 1)
    ev = np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)
    top = float(ev[0])
    pr = float(ev.sum() ** 2 / np.sum(ev**2)) if ev.sum() > 0 else 0.0
    t_s = float(schedule.t_of_snr(1.0 / top)) if top > 0 else float("nan")
    lin = DiscreteSchedule.linear(1000)
    k_s = int(np.clip(np.rint(lin.t_of_snr(1.0 / top)) - 1, 0, 999)) if top > 0 else -1
    np.savetxt(
        out / "spectrum.csv",
        np.column_stack([np.arange(1, ev.size + 1), ev]),
        delimiter=",",
        header="rank,eigenvalue",
        comments="",
        fmt=["%d", "%.8e"],
    )
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog(np.arange(1, ev.size + 1), np.maximum(ev, 1e-16), lw=1.5)
    ax.set_xlabel("rank")
    ax.set_ylabel("eigenvalue of data covariance")
    ax.set_title("Data covariance spectrum")
    fig.tight_layout()
    fig.savefig(_fig_path(out, "spectrum.png"), dpi=120)
    plt.close(fig)
    from .theory.collapse import collapse_snr

    n_pts = points.shape[0]
    snr_c = collapse_snr(n_pts, ev) if n_pts >= 2 and top > 0 else float("nan")
    try:
        t_c = float(schedule.t_of_snr(snr_c))
    except ValueError:  # outside the schedule's range
        t_c = float("nan")
    k_c = _ddpm_index(float(OrnsteinUhlenbeck().t_of_snr(snr_c)), OrnsteinUhlenbeck(), lin) if np.isfinite(t_c) else ""
    from .theory.geometric import geometric_memorization

    pos = ev[ev > 1e-12 * top] if top > 0 else ev[:0]
    if n_pts >= 2 and pos.size:
        geo = geometric_memorization(n_pts, pos, OrnsteinUhlenbeck().t_min)
        eff_dim, kept = float(geo.effective_dimension[0]), int(geo.retained_dimensions(0.5)[0])
    else:
        eff_dim, kept = float("nan"), -1
    md = (
        "## Data covariance, speciation and predicted collapse\n\n"
        f"Top eigenvalue Lambda = {top:.4g}, trace = {ev.sum():.4g}, participation ratio "
        f"(sum lambda)^2 / sum lambda^2 = {pr:.3g}.\n\n"
        f"Speciation time t_S (alpha_t^2 Lambda = sigma_t^2; Biroli et al. 2024): **t_S = {t_s:.4g}** "
        f"in {schedule!r}, DDPM linear-schedule step index {k_s} (of 1000).\n\n"
        f"Predicted collapse time of the exact empirical model of these N = {n_pts} points "
        "(annealed: log N = 1/2 sum_k log(1 + snr lambda_k); Biroli et al. 2024): "
        f"**t_C = {t_c:.4g}** (DDPM linear-schedule step index {k_c}); below it in reverse time the "
        "exact empirical posterior sits on the training point a trajectory came from.\n\n"
        "Geometric memorisation at t -> 0 (annealed prediction for Gaussian data with this spectrum, "
        "`sd.geometric_memorization`; Achilli et al. 2024): the exact empirical model retains "
        f"**{kept} of {pos.size}** principal directions at half or more of their posterior variance, "
        f"an effective dimension sum_k rho_k = {eff_dim:.4g}; lower-variance directions are lost first.\n\n"
        "![spectrum](figures/spectrum.png) (eigenvalues in spectrum.csv)\n"
    )
    rows = [
        {"quantity": "top_eigenvalue", "value": top},
        {"quantity": "participation_ratio", "value": pr},
        {"quantity": "speciation_time", "value": t_s},
        {"quantity": "speciation_ddpm_index", "value": k_s},
        {"quantity": "collapse_time_predicted", "value": t_c, "ddpm_index": k_c},
        {"quantity": "retained_dimensions_t0_predicted", "value": kept},
        {"quantity": "effective_dimension_t0_predicted", "value": eff_dim},
    ]
    return md, rows


def _ddpm_index(t: float, schedule: Schedule, lin: DiscreteSchedule):
    """DDPM (linear, 1000 steps) index at equal snr, or "" for a non-finite time."""
    return int(time_to_ddpm_index(t, schedule, lin)) if np.isfinite(t) else ""


def symmetry_section(
    points: np.ndarray, schedule: Schedule, n_sub: int, rng: np.random.Generator, progress: bool = True
) -> tuple[str, list[dict]]:
    """Symmetry-breaking times of the exact empirical model (Raya & Ambrogioni 2023).

    The central fixed point of the reverse-SDE drift (``sde``) or of the
    potential -log p_t (``potential``) is tracked from large t; the time at
    which it loses stability is reported, on a random subsample of ``n_sub``
    training points when N is larger (the cost grows linearly with N).
    """
    from .theory import symmetry_breaking_time

    n = points.shape[0]
    sub = points if n <= n_sub else points[np.sort(rng.choice(n, n_sub, replace=False))]
    emp = EmpiricalDistribution(sub, schedule=schedule)
    lin = DiscreteSchedule.linear(1000)
    rows, lines = [], []
    for dyn in ("sde", "potential"):
        t0 = time.time()
        res = symmetry_breaking_time(emp, dyn, log_snr_range=(-12.0, 2.0), n_grid=24, xtol=1e-4, progress=progress)
        k = _ddpm_index(res.time, schedule, lin)
        # closest approach to instability along the scan (the whole story when the centre never breaks)
        ok = np.isfinite(res.margin)
        i = int(np.argmax(np.where(ok, res.margin, -np.inf)))
        t_near, m_near = float(res.times[i]), float(res.margin[i])
        rows.append(
            {"quantity": f"symmetry_breaking_time_{dyn}", "value": res.time, "ddpm_index": k, "n_points": sub.shape[0]}
        )
        rows.append(
            {
                "quantity": f"closest_approach_time_{dyn}",
                "value": t_near,
                "ddpm_index": _ddpm_index(t_near, schedule, lin),
                "n_points": sub.shape[0],
                "max_margin": m_near,
            }
        )
        note = res.note or ("" if np.isfinite(res.time) else "no loss of stability down to log-snr 2")
        lines.append(
            f"| {dyn} | {res.time:.4g} | {k} | {m_near:.3g} at t = {t_near:.4g} | {note} | {time.time() - t0:.0f} s |"
        )
    md = (
        "## Symmetry breaking (exact empirical model)\n\n"
        f"Time at which the tracked central fixed point loses stability, for the empirical model of "
        f"{sub.shape[0]} training points{' (random subsample)' if sub.shape[0] < n else ''}. "
        "`sde`: the reverse-SDE drift (Raya & Ambrogioni 2023); `potential`: -log p_t loses convexity. "
        "Data without an exact symmetry give an imperfect bifurcation: the tracked centre can slide into "
        "one basin without losing stability (reported as NaN) or end in a fold.\n\n"
        "| definition | t | DDPM linear index | closest approach (max margin) | note | compute |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n"
    )
    return md, rows


def collapse_section(
    model: EmpiricalDistribution,
    queries: np.ndarray,
    times: np.ndarray,
    rng: np.random.Generator,
    out: Path,
    progress: bool = True,
) -> tuple[str, list[dict]]:
    """Posterior entropy over training points of the exact empirical model, measured.

    For held-out x_0 and x_t = alpha x_0 + sigma eps, the weights r_i(x_t)
    over the N training points have entropy H; exp(H) is the effective number
    of training points the exact denoiser averages. exp(H) -> 1 signals the
    collapse onto single training points (memorization regime).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sch = model.schedule
    noise = rng.standard_normal(queries.shape)
    rows, ent_mean, ent_se = [], [], []
    it = iterate(times, progress, "posterior entropy vs t")
    for t in it:
        x = float(sch.alpha(t)) * queries + float(sch.sigma(t)) * noise
        h = posterior_entropy(model.component_posterior(x, t))
        ent_mean.append(h.mean())
        ent_se.append(h.std(ddof=1) / np.sqrt(h.size) if h.size > 1 else 0.0)
        rows.append(
            {
                "quantity": "posterior_entropy",
                "t": float(t),
                "value": float(h.mean()),
                "se": float(ent_se[-1]),
                "effective_points": float(np.exp(h).mean()),
            }
        )
    ent_arr = np.array(ent_mean)
    eff = np.exp(ent_arr)
    below = np.nonzero(eff < 2.0)[0]
    t_c = float(times[below].max()) if below.size else float("nan")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(times, ent_mean, yerr=ent_se, marker="o", ms=3, lw=1)
    ax.axhline(np.log(model.n_points), ls="--", c="gray", lw=1, label="log N")
    if np.isfinite(t_c):
        ax.axvline(t_c, ls=":", c="C3", lw=1, label=f"exp(H) < 2 below t = {t_c:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel(f"t ({type(sch).__name__})")
    ax.set_ylabel("entropy of p(i | x_t) [nats]")
    ax.set_title(f"Exact empirical model, N = {model.n_points}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(_fig_path(out, "posterior_entropy.png"), dpi=120)
    plt.close(fig)
    if np.isfinite(t_c):
        verdict = f"The largest grid time with effective number exp(H) below 2 is **t = {t_c:.4g}**."
    else:
        verdict = f"exp(H) stays above 2 down to the smallest grid time t = {times.min():.3g}: no collapse there."
    md = (
        "## Collapse of the exact empirical model (measured)\n\n"
        f"Entropy of the posterior over the N = {model.n_points} training points at held-out points "
        f"noised to time t ({queries.shape[0]} queries, mean with standard error). {verdict}\n\n"
        "![posterior entropy](figures/posterior_entropy.png)\n"
    )
    rows.append({"quantity": "collapse_time_measured_expH_lt_2", "value": t_c})
    return md, rows


def information_section(
    model: EmpiricalDistribution,
    times: np.ndarray,
    n_draws: int,
    rng: np.random.Generator,
    out: Path,
    class_names=None,
    progress: bool = True,
) -> tuple[str, list[dict]]:
    """Per-class entropy-rate profiles of the labelled exact empirical model (Handke et al. 2025).

    dH(Y | X_t)/dt by the pathwise derivative of the common-random-number Monte
    Carlo estimator over ``n_draws`` training points; the peak of each class's
    profile is the time at which that class is decided in reverse time.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .theory.entropy_rate import entropy_rate

    t0 = time.time()
    est = entropy_rate(model, times, n=n_draws, rng=rng, progress=progress)
    sch = model.schedule
    lin = DiscreteSchedule.linear(1000)
    rows, lines = [], []
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for c, lab in enumerate(est.classes):
        name = str(class_names[int(lab)]) if class_names is not None else str(lab)
        tp, se = float(est.peak_time[c]), float(est.peak_time_stderr[c])
        k = _ddpm_index(tp, sch, lin)
        rows.append(
            {
                "quantity": f"entropy_rate_peak_time_class_{name}",
                "value": tp,
                "se": se,
                "ddpm_index": k,
                "peak_rate": float(np.max(est.class_rate[c])),
                "draws": int(est.class_counts[c]),
            }
        )
        edge = " (grid edge)" if tp in (float(times[0]), float(times[-1])) else ""
        lines.append(f"| {name} | {int(est.class_counts[c])} | {tp:.4g} +- {se:.2g}{edge} | {k} |")
        ax.plot(times, est.class_rate[c], color=f"C{c % 10}", lw=1, label=name)
    ax.set_xscale("log")
    ax.set_xlabel(f"t ({type(sch).__name__})")
    ax.set_ylabel("dH(Y | X_t)/dt given the class [nats / unit t]")
    ax.set_title(f"Per-class entropy rate, exact empirical model (N = {model.n_points})")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(_fig_path(out, "entropy_rate.png"), dpi=120)
    plt.close(fig)
    md = (
        "## Class decisions: entropy-rate peaks (exact empirical model)\n\n"
        f"dH(Y | X_t)/dt per true class, {n_draws} draws from the training set noised with common random numbers, "
        f"pathwise derivative (no finite differences); the peak is where the class is decided in reverse "
        f"time (Handke et al. 2025). Standard errors by bootstrap over draws; the grid has {times.size} "
        f"log-spaced times (factor {float(times[1] / times[0]):.3g} apart), which limits the resolution "
        f"when the s.e. is smaller. {time.time() - t0:.0f} s.\n\n"
        "| class | draws | peak t +- s.e. | DDPM linear index |\n|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n\n![entropy rate](figures/entropy_rate.png)\n"
    )
    return md, rows


def make_report(
    points: np.ndarray,
    queries: np.ndarray,
    *,
    labels: np.ndarray | None,
    config: ReportConfig,
    schedule: Schedule,
    out: Path,
    progress: bool = True,
) -> Path:
    """Write report.md, figures, results.csv and results.json into ``out``; return the report path."""
    from . import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rng = np.random.default_rng(config.seed)
    model = EmpiricalDistribution(points, labels, schedule=schedule)
    # log-spaced times in OU units, mapped to the schedule by equal snr
    ou = OrnsteinUhlenbeck()
    t_ou = np.geomspace(1e-3, 3.0, config.n_times)
    times = np.array([schedule.t_of_snr(ou.snr(t)) for t in t_ou])
    sections = [spectrum_section(points, schedule, out)]
    if config.sb_points > 0:
        sections.append(symmetry_section(points, schedule, config.sb_points, rng, progress))
    sections.append(collapse_section(model, queries, times, rng, out, progress))
    if labels is not None and config.info_draws > 0:
        names = config.extra.get("class_names")
        # a finer grid than the other sections use, over the range where H(Y | X_t) moves (OU 0.05 to 6)
        info_times = np.array([schedule.t_of_snr(ou.snr(t)) for t in np.geomspace(0.05, 6.0, 40)])
        info_times = info_times[(info_times > schedule.t_min) & (info_times <= schedule.t_max)]
        sections.append(information_section(model, info_times, config.info_draws, rng, out, names, progress))
    header = (
        f"# statphys_diffusion predictions: {config.data}\n\n"
        f"Data: {config.source}; N = {config.n_train} training points in d = {config.dim}; "
        f"schedule {schedule!r}; seed {config.seed}. Generated by `statphys-diffusion predict` "
        f"(version {__version__}) in {{elapsed:.1f}} s.\n\n"
    )
    rows = [r for _, rs in sections for r in rs]
    elapsed = time.time() - t0
    text = header.format(elapsed=elapsed) + "\n".join(md for md, _ in sections)
    report = out / "report.md"
    atomic_write_text(report, text)
    write_rows_csv(out / "results.csv", rows)
    meta = {"config": asdict(config), "version": __version__, "git_commit": _git_commit(), "elapsed_s": elapsed}
    atomic_write_text(out / "results.json", json.dumps(meta, indent=2, default=str))
    return report
