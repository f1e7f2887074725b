"""The ``predict`` report: what the package can predict and measure for a data set.

A composition of theory calls on one exact empirical model built once: each section calls the
theory functions, draws their results' own ``plot`` and returns a :class:`Section` (markdown, rows
of the long table, the results' ``to_rows()``). Outputs: ``report.md``, ``figures/*.png``,
``results.csv`` (the long table: one row per quantity, per time and per class, columns
:data:`COLUMNS`) and ``results.json`` (resolved configuration, package version, git commit, the
table and every result's rows).
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
from .conventions import time_to_ddpm_index
from .empirical import EmpiricalDistribution
from .schedules import VPSDE, DiscreteSchedule, OrnsteinUhlenbeck, Schedule
from .spectrum import CovarianceSpectrum, covariance_spectrum
from .theory import (
    collapse_time,
    entropy_rate,
    geometric_memorization,
    posterior_collapse,
    speciation_time,
    symmetry_breaking_time,
)

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


# the long (tidy) table of results.csv: one row per quantity (per time, per class), every column in every row
COLUMNS = ("section", "quantity", "class", "t", "value", "stderr", "ddpm_index", "n")


def _row(section: str, quantity: str, value, **kw) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    row.update(section=section, quantity=quantity, value=value, **kw)
    unknown = set(row) - set(COLUMNS)
    if unknown:  # pragma: no cover - a programming error in a section
        raise KeyError(f"report rows have no columns {sorted(unknown)}")
    return row


@dataclass
class Section:
    """One section of the report: its markdown, its rows of the long table, its results for the JSON."""

    markdown: str
    rows: list[dict]
    results: dict


def _save(fig, out: Path, name: str) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(_fig_path(out, name), dpi=120)
    plt.close(fig)


def _figure(size=(5, 3.5)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


_LIN = DiscreteSchedule.linear(1000)


def _ddpm_index(t: float, schedule: Schedule):
    """DDPM (linear, 1000 steps) index at equal snr, or "" for a non-finite time."""
    return int(time_to_ddpm_index(t, schedule, _LIN)) if np.isfinite(t) else ""


def spectrum_section(spectrum: CovarianceSpectrum, schedule: Schedule, out: Path) -> Section:
    """Data covariance spectrum, the speciation time t_S and the predicted collapse and retention.

    t_S solves alpha_t^2 Lambda = sigma_t^2 (:func:`~statphys_diffusion.speciation_time`; Biroli,
    Bonnaire, de Bortoli & Mezard 2024); t_C is :func:`~statphys_diffusion.collapse_time` of the N
    points with this spectrum, and the retention at t -> 0 is
    :func:`~statphys_diffusion.geometric_memorization` (Achilli et al. 2024).
    """
    ev, n_pts, top = spectrum.eigenvalues, spectrum.n, spectrum.top
    pr = float(ev.sum() ** 2 / np.sum(ev**2)) if ev.sum() > 0 else 0.0
    t_s = speciation_time(schedule=schedule, top_eigenvalue=top) if top > 0 else float("nan")
    k_s = int(np.clip(np.rint(_LIN.t_of_snr(1.0 / top)) - 1, 0, 999)) if top > 0 else -1
    np.savetxt(
        out / "spectrum.csv",
        np.column_stack([np.arange(1, ev.size + 1), ev]),
        delimiter=",",
        header="rank,eigenvalue",
        comments="",
        fmt=["%d", "%.8e"],
    )
    fig, ax = _figure()
    spectrum.plot(ax)
    ax.set_title("Data covariance spectrum")
    _save(fig, out, "spectrum.png")
    try:
        t_c = collapse_time(n_pts, ev, schedule) if top > 0 else float("nan")
    except ValueError:  # outside the schedule's range
        t_c = float("nan")
    k_c = _ddpm_index(t_c, schedule)
    pos = ev[ev > 1e-12 * top] if top > 0 else ev[:0]
    geo = geometric_memorization(n_pts, pos, OrnsteinUhlenbeck().t_min) if pos.size else None
    eff_dim = float(geo.effective_dimension[0]) if geo is not None else float("nan")
    kept = int(geo.retained_dimensions(0.5)[0]) if geo is not None else -1
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
    sec = "spectrum"
    rows = [
        _row(sec, "top_eigenvalue", top, n=n_pts),
        _row(sec, "participation_ratio", pr, n=n_pts),
        _row(sec, "speciation_time", t_s, ddpm_index=k_s),
        _row(sec, "collapse_time_predicted", t_c, ddpm_index=k_c, n=n_pts),
        _row(sec, "retained_dimensions_t0_predicted", kept, n=n_pts),
        _row(sec, "effective_dimension_t0_predicted", eff_dim, n=n_pts),
    ]
    results = {"covariance_spectrum": spectrum.to_rows()}
    if geo is not None:
        results["geometric_memorization_t0"] = geo.to_rows()
    return Section(md, rows, results)


def symmetry_section(
    points: np.ndarray, schedule: Schedule, n_sub: int, rng: np.random.Generator, out: Path, progress: bool = True
) -> Section:
    """Symmetry-breaking times of the exact empirical model (Raya & Ambrogioni 2023).

    :func:`~statphys_diffusion.symmetry_breaking_time` for the reverse-SDE drift (``sde``) and for
    the potential -log p_t (``potential``), on a random subsample of ``n_sub`` training points when
    N is larger (the cost grows linearly with N).
    """
    n = points.shape[0]
    sub = points if n <= n_sub else points[np.sort(rng.choice(n, n_sub, replace=False))]
    emp = EmpiricalDistribution(sub, schedule=schedule)
    rows, lines, results = [], [], {}
    fig, ax = _figure()
    sec = "symmetry_breaking"
    for dyn in ("sde", "potential"):
        t0 = time.time()
        res = symmetry_breaking_time(emp, dyn, log_snr_range=(-12.0, 2.0), n_grid=24, xtol=1e-4, progress=progress)
        res.plot(ax)
        results[dyn] = res.to_rows()
        k = _ddpm_index(res.time, schedule)
        # closest approach to instability along the scan (the whole story when the centre never breaks)
        ok = np.isfinite(res.margin)
        i = int(np.argmax(np.where(ok, res.margin, -np.inf)))
        t_near, m_near = float(res.times[i]), float(res.margin[i])
        rows.append(_row(sec, f"symmetry_breaking_time_{dyn}", res.time, ddpm_index=k, n=sub.shape[0]))
        rows.append(
            _row(sec, f"closest_approach_time_{dyn}", t_near, ddpm_index=_ddpm_index(t_near, schedule), n=sub.shape[0])
        )
        rows.append(_row(sec, f"closest_approach_margin_{dyn}", m_near, t=t_near, n=sub.shape[0]))
        note = res.note or ("" if np.isfinite(res.time) else "no loss of stability down to log-snr 2")
        lines.append(
            f"| {dyn} | {res.time:.4g} | {k} | {m_near:.3g} at t = {t_near:.4g} | {note} | {time.time() - t0:.0f} s |"
        )
    ax.set_title(f"Central fixed point, empirical model of {sub.shape[0]} points", fontsize=9)
    _save(fig, out, "symmetry_breaking.png")
    md = (
        "## Symmetry breaking (exact empirical model)\n\n"
        f"Time at which the tracked central fixed point loses stability, for the empirical model of "
        f"{sub.shape[0]} training points{' (random subsample)' if sub.shape[0] < n else ''}. "
        "`sde`: the reverse-SDE drift (Raya & Ambrogioni 2023); `potential`: -log p_t loses convexity. "
        "Data without an exact symmetry give an imperfect bifurcation: the tracked centre can slide into "
        "one basin without losing stability (reported as NaN) or end in a fold.\n\n"
        "| definition | t | DDPM linear index | closest approach (max margin) | note | compute |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n\n"
        "![symmetry breaking](figures/symmetry_breaking.png)\n"
    )
    return Section(md, rows, results)


def collapse_section(
    model: EmpiricalDistribution,
    queries: np.ndarray,
    times: np.ndarray,
    rng: np.random.Generator,
    out: Path,
    progress: bool = True,
) -> Section:
    """Posterior entropy over training points of the exact empirical model, measured.

    :func:`~statphys_diffusion.posterior_collapse` at held-out x_0 (one eps per query, shared by
    all times): the weights r_i(x_t) over the N training points have entropy H; exp(H) is the
    effective number of training points the exact denoiser averages, and exp(H) -> 1 signals the
    collapse onto single training points (memorization regime).
    """
    curve = posterior_collapse(model, times, queries=queries, rng=rng, progress=progress)
    sec = "collapse"
    rows = []
    for t, h, hs, p in zip(curve.times, curve.entropy, curve.entropy_stderr, curve.participation):
        stderr = float(hs) if np.isfinite(hs) else 0.0
        rows.append(_row(sec, "posterior_entropy", float(h), t=float(t), stderr=stderr, n=queries.shape[0]))
        rows.append(_row(sec, "participation", float(p), t=float(t), n=queries.shape[0]))
    below = np.nonzero(np.exp(curve.entropy) < 2.0)[0]
    t_c = float(curve.times[below].max()) if below.size else float("nan")
    fig, ax = _figure()
    curve.plot(ax)
    if np.isfinite(t_c):
        ax.axvline(t_c, ls=":", c="C3", lw=1, label=f"exp(H) < 2 below t = {t_c:.3g}")
    ax.set_xlabel(f"t ({type(model.schedule).__name__})")
    ax.set_title(f"Exact empirical model, N = {model.n_points}")
    ax.legend(fontsize=8)
    _save(fig, out, "posterior_entropy.png")
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
    rows.append(_row(sec, "collapse_time_measured_expH_lt_2", t_c, n=queries.shape[0]))
    return Section(md, rows, {"posterior_collapse": curve.to_rows()})


def information_section(
    model: EmpiricalDistribution,
    times: np.ndarray,
    n_draws: int,
    rng: np.random.Generator,
    out: Path,
    class_names=None,
    progress: bool = True,
) -> Section:
    """Per-class entropy-rate profiles of the labelled exact empirical model (Handke et al. 2025).

    :func:`~statphys_diffusion.entropy_rate`: dH(Y | X_t)/dt by the pathwise derivative of the
    common-random-number Monte Carlo estimator over ``n_draws`` training points; the peak of each
    class's profile is the time at which that class is decided in reverse time.
    """
    t0 = time.time()
    est = entropy_rate(model, times, n=n_draws, rng=rng, progress=progress)
    sch = model.schedule
    names = [str(class_names[int(lab)]) if class_names is not None else str(lab) for lab in est.classes]
    rows, lines = [], []
    sec = "entropy_rate"
    for c, name in enumerate(names):
        tp, se = float(est.peak_time[c]), float(est.peak_time_stderr[c])
        k = _ddpm_index(tp, sch)
        draws = int(est.class_counts[c])
        rows.append(_row(sec, "entropy_rate_peak_time", tp, stderr=se, ddpm_index=k, n=draws, **{"class": name}))
        rows.append(_row(sec, "entropy_rate_peak_rate", float(np.max(est.class_rate[c])), n=draws, **{"class": name}))
        edge = " (grid edge)" if tp in (float(times[0]), float(times[-1])) else ""
        lines.append(f"| {name} | {draws} | {tp:.4g} +- {se:.2g}{edge} | {k} |")
    fig, ax = _figure((6, 3.8))
    est.plot(ax, class_names=names)
    ax.set_xlabel(f"t ({type(sch).__name__})")
    ax.set_title(f"Entropy rate, exact empirical model (N = {model.n_points})")
    ax.legend(fontsize=6, ncol=2)
    _save(fig, out, "entropy_rate.png")
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
    return Section(md, rows, {"entropy_rate": est.to_rows()})


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
    sections = [spectrum_section(covariance_spectrum(model.points), schedule, out)]
    if config.sb_points > 0:
        sections.append(symmetry_section(model.points, schedule, config.sb_points, rng, out, progress))
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
    rows = [r for sec in sections for r in sec.rows]
    elapsed = time.time() - t0
    text = header.format(elapsed=elapsed) + "\n".join(sec.markdown for sec in sections)
    report = out / "report.md"
    atomic_write_text(report, text)
    write_rows_csv(out / "results.csv", rows)
    meta = {
        "config": asdict(config),
        "version": __version__,
        "git_commit": _git_commit(),
        "elapsed_s": elapsed,
        "table": rows,
        "results": {name: res for sec in sections for name, res in sec.results.items()},
    }
    atomic_write_text(out / "results.json", json.dumps(meta, indent=2, default=str))
    return report
