"""Result 5 redone (issue 34): does a Gaussian late start lose quality below the symmetry breaking?

Raya & Ambrogioni (2023): starting the reverse process at a late time t_s from the data's Gaussian
(Gaussian late initialisation, GLI: N(alpha m, alpha^2 C + sigma^2 I) of the training set) costs no
sample quality while t_s lies above the symmetry breaking, where p_t is still close to that
Gaussian, and loses quality below it. Pre-registration: ``validation/preregistrations/late_start.md``
(claims, gates, power and decision rule; its SHA-256 is in every output).

What is measured, on the committed class-conditional ``small`` network (CIFAR-10, 16 x 16, DDPM
linear schedule; used unconditionally) of the earlier R5 row:

* a full chain: N(0, I) at t = 1000, then every 5th DDPM ancestral step down to 0;
* from each of 12 start times (equally spaced in log-SNR from t = 990 to t = 60, on multiples of 5),
  the same sampler at the same step size (``sd.DDPMAncestral(step=5)``: the start changes, the step
  does not) from a GLI draw, and from an N(0, I) draw as control;
* 3 seeds of 1,000 samples each; quality: FD_own (the evaluation classifier's features) to the
  10,000 test images; per (start, kind, seed) also ``n_bootstrap`` resamples of the samples.

The critical start t* is the latest start (smallest t) such that at it and at every earlier start
the GLI samples are within k = 3 combined standard errors of the full chain's FD_own (standard
errors of the means over seeds, from each seed's bootstrap over its samples).
Verdict by the rule of the pre-registration, with its bootstrap stability (resampling samples within
each seed). Jobs are cached per (kind, start, seed) in ``validation/jobs/late_start`` (a killed run
resumes, also on another machine).

Outputs in ``--out`` (default figures/): ``late_start.json`` (criterion, gates, verdict, provenance),
``late_start.csv`` (one row per start and kind) and ``late_start.png``.

Usage: python validation/late_start.py [--quick] [--reference-check] [--out DIR] [--progress]
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _experiment as ex  # noqa: E402
from _driver import save_figure  # noqa: E402

import statphys_diffusion as sd  # noqa: E402

NAME = "late_start"
JOBS = ex.ROOT / "validation" / "jobs" / NAME
KINDS = ("gli", "control")


@dataclass(frozen=True)
class Config:
    """One mode's sizes (the pre-registration states the full one)."""

    mode: str
    t_first: float  # the earliest start
    t_last: float  # the latest start
    n_starts: int
    step: float  # the sampler's step, in the schedule's time units
    n: int  # samples per (start, kind, seed)
    seeds: int
    k: float  # standard errors of the threshold rule
    window: float  # half-width of the predicted window, in log-SNR
    n_bootstrap: int
    network: str  # "small" (the committed network) or "quick" (a toy network), or a reference stand-in
    seed: int = 0


FULL = Config("full", 990.0, 60.0, 12, 5.0, 1000, 3, 3.0, 1.5, 200, "small")
QUICK = Config("quick", 990.0, 60.0, 3, 100.0, 24, 2, 3.0, 1.5, 20, "quick")
# the reference check (pre-registration, "Reference check"): exact stand-ins, fewer samples
REFERENCE = dataclasses.replace(FULL, mode="reference", n=300, n_bootstrap=100)

# the predictions the window is centred on (figures/network_symmetry.json, committed before this file):
# the Gaussian instability time of the data's top eigenvalue and the network's own crossing
T_GAUSSIAN = 626.99
T_NETWORK = 702.48


def starts(cfg: Config, schedule) -> np.ndarray:
    """The start times: equally spaced in log-SNR from t_first to t_last, rounded to multiples of the step."""
    lo, hi = float(schedule.log_snr(cfg.t_first)), float(schedule.log_snr(cfg.t_last))
    ts = [float(schedule.t_of_snr(np.exp(v))) for v in np.linspace(lo, hi, cfg.n_starts)]
    return np.array(sorted({float(np.round(t / cfg.step) * cfg.step) for t in ts}, reverse=True))


def window(cfg: Config, schedule) -> tuple[float, float]:
    """The predicted window of the critical start, in log-SNR: [L(T_NETWORK) - w, L(T_GAUSSIAN) + w]."""
    return float(schedule.log_snr(T_NETWORK)) - cfg.window, float(schedule.log_snr(T_GAUSSIAN)) + cfg.window


# -- the setting: network, training set, evaluation features --------------------------------------------


@functools.lru_cache(maxsize=1)
def setting(cfg: Config, data):
    """(model, training rows (N, d), image shape (C, H, W), feature function, test features)."""
    import _networks as nw

    from statphys_diffusion import datasets
    from statphys_diffusion.nets import classifier as clf

    base = nw.QUICK if cfg.network == "quick" else nw.FULL
    net_cfg = dict(base, data=str(data or datasets.find_cifar10()), runs=str(ex.ROOT / "runs"))
    train = nw.training_set(net_cfg)
    rows = nw.flat_points(train.images)
    c, h = train.images.shape[3], train.images.shape[1]
    if cfg.network in ("small", "quick"):
        model = nw.conditional_network(dict(net_cfg, progress=False))[0]
    elif cfg.network == "ref-gaussian":  # GLI is exact for the Gaussian: no start loses quality
        model = sd.GaussianMixture.fit(rows, schedule=sd.DiscreteSchedule.linear(1000))
    elif cfg.network == "ref-classes":  # the class-Gaussian mixture: not Gaussian below its speciation
        model = sd.GaussianMixture.fit(rows, train.labels, schedule=sd.DiscreteSchedule.linear(1000))
    else:
        raise ValueError(f"unknown network {cfg.network!r}")
    net = nw.evaluation_classifier(net_cfg)
    test = datasets.load_cifar10(net_cfg["data"], "test", size=net_cfg["size"], progress=False)
    f_test = clf.features(net, nw.net_images(test.images))

    def feats(x):
        return clf.features(net, np.clip(x, -1, 1).reshape(-1, c, h, h).astype(np.float32))

    return model, rows, (c, h, h), feats, f_test


def _config(job: dict) -> Config:
    return Config(**job["config"])


def scan_job(job: dict) -> dict:
    """One (kind, start, seed): sample, FD_own to the test images, and its bootstrap over the samples."""
    cfg = _config(job)
    model, rows, _, feats, f_test = setting(cfg, job["data"])
    sch = model.schedule
    kind, t0, seed = job["kind"], float(job["t_start"]), int(job["seed"])
    rng = np.random.default_rng([cfg.seed, seed, KINDS.index(kind) if kind in KINDS else 9, int(t0)])
    if kind == "gli":
        x0 = sd.gaussian_late_init(rows, t0, schedule=sch).sample(cfg.n, rng=rng)
    else:  # the control and the full chain: the standard start N(0, (alpha^2 + sigma^2) I)
        x0 = np.sqrt(float(sch.alpha(t0)) ** 2 + float(sch.sigma2(t0))) * rng.standard_normal((cfg.n, rows.shape[1]))
    x = sd.DDPMAncestral(step=cfg.step).sample(model, x_init=x0, t_start=t0, rng=rng).x
    f = feats(x)
    boot = [sd.frechet_distance(f[rng.integers(0, f.shape[0], f.shape[0])], f_test) for _ in range(cfg.n_bootstrap)]
    return {"fd": sd.frechet_distance(f, f_test), "fd_boot": np.array(boot), "steps": int(np.ceil(t0 / cfg.step))}


# -- the rule ---------------------------------------------------------------------------------------------


def stderr_of_mean(boot: np.ndarray) -> np.ndarray:
    """Standard error of the mean over seeds of FD_own, from each seed's bootstrap: ``boot`` (..., seeds, B)
    -> (...,), sqrt(sum_s var_B(s)) / S. Each seed's 1,000 samples give its own sampling variance with many
    degrees of freedom; three seeds alone would give a standard error with two."""
    s = boot.shape[-2]
    return np.sqrt(boot.var(axis=-1, ddof=1).sum(axis=-1)) / s


def critical_start(
    ts: np.ndarray, gli: np.ndarray, full: np.ndarray, k: float, se_gli: np.ndarray, se_full: float
) -> tuple[float, np.ndarray]:
    """(t*, excess in standard errors per start): ``gli`` (starts, seeds) and ``full`` (seeds,) FD_own, with
    the standard errors of their means over seeds (:func:`stderr_of_mean`).

    The excess at a start is (mean_gli - mean_full) / sqrt(se_gli^2 + se_full^2); t* is the smallest start
    such that it and every earlier (larger) start have excess <= k, NaN when even the earliest start
    exceeds it."""
    se = np.sqrt(np.asarray(se_gli) ** 2 + float(se_full) ** 2)
    z = (gli.mean(axis=1) - full.mean()) / se
    order = np.argsort(-ts)  # earliest start first
    t_star = float("nan")
    for i in order:
        if z[i] > k:
            break
        t_star = float(ts[i])
    return t_star, z


def decide(data: dict, cfg: Config, schedule) -> tuple[str, str]:
    """The pre-registered decision rule on one (possibly resampled) set of FD_own values."""
    ts, k = data["starts"], cfg.k
    t_star, _ = critical_start(ts, data["gli"], data["full"], k, data["se_gli"], data["se_full"])
    lo, hi = window(cfg, schedule)
    if not np.isfinite(t_star):
        return "refuted", "even the earliest start loses quality against the full chain"
    lsnr = float(schedule.log_snr(t_star))
    where = f"t* = {t_star:g} (log-SNR {lsnr:.2f}; window [{lo:.2f}, {hi:.2f}])"
    if lo <= lsnr <= hi:
        return "confirmed", f"the critical start lies in the predicted window: {where}"
    return "refuted", f"the critical start lies outside the predicted window: {where}"


def gates(data: dict, cfg: Config) -> dict:
    """G1 (the metric sees a bad start) and G2 (power), on the control at the latest start."""
    ts = data["starts"]
    last = int(np.argmin(ts))
    ctrl, full = data["control"][last], data["full"]
    se = float(np.hypot(data["se_control"][last], data["se_full"]))
    gap = float(ctrl.mean() - full.mean())
    full_se = float(np.sqrt(2.0) * data["se_full"])
    return {
        "G1_control_excess_se": gap / se,
        "G1_passes": bool(gap > cfg.k * se),
        "G2_detectable_loss": cfg.k * full_se,
        "G2_control_gap": gap,
        "G2_passes": bool(cfg.k * full_se <= 0.25 * gap),
    }


def _resample(data: dict, rng) -> dict:
    """A bootstrap replicate: each (kind, start, seed) value replaced by one of its bootstrap FDs."""
    b = rng.integers(0, data["boot_full"].shape[-1])
    pick = {k: data[f"boot_{k}"][..., b] for k in ("gli", "control", "full")}
    return dict(data, **pick)


# -- driver -----------------------------------------------------------------------------------------------


def measure(cfg: Config, data, cache, progress: bool) -> dict:
    from statphys_diffusion import datasets

    sch = sd.DiscreteSchedule.linear(1000)
    ts = starts(cfg, sch)
    base = {"config": dataclasses.asdict(cfg), "data": None if data is None else str(data)}
    jobs = [dict(base, kind="full", t_start=1000.0, seed=s) for s in range(cfg.seeds)]
    jobs += [dict(base, kind=k, t_start=float(t), seed=s) for t in ts for k in KINDS for s in range(cfg.seeds)]
    if data is None and datasets.find_cifar10() is None:
        raise SystemExit("CIFAR-10 not found: pass --data")
    res = sd.run_sweep(scan_job, jobs, cache_dir=cache, progress=progress, desc=f"{NAME} jobs")
    by = {(j["kind"], j["t_start"], j["seed"]): r for j, r in zip(jobs, res)}

    def table(kind, field):
        return np.array([[by[kind, float(t), s][field] for s in range(cfg.seeds)] for t in ts])

    out = {
        "starts": ts,
        "full": np.array([by["full", 1000.0, s]["fd"] for s in range(cfg.seeds)]),
        "boot_full": np.array([by["full", 1000.0, s]["fd_boot"] for s in range(cfg.seeds)]),
    }
    for k in KINDS:
        out[k], out[f"boot_{k}"] = table(k, "fd"), table(k, "fd_boot")
        out[f"se_{k}"] = stderr_of_mean(out[f"boot_{k}"])
    out["se_full"] = float(stderr_of_mean(out["boot_full"]))
    return out


def summarise(data: dict, cfg: Config, prereg: str, seconds: float) -> dict:
    sch = sd.DiscreteSchedule.linear(1000)
    g = gates(data, cfg)
    if not (g["G1_passes"] and g["G2_passes"]):
        failed = [x for x in ("G1", "G2") if not g[f"{x}_passes"]]
        verdict = ex.Verdict("not testable", f"gates failed: {failed}", 1.0, 0)
    else:
        verdict = ex.decide(lambda d: decide(d, cfg, sch), data, _resample, n_resamples=cfg.n_bootstrap, rng=cfg.seed)
    se_full = data["se_full"]
    t_star, z_gli = critical_start(data["starts"], data["gli"], data["full"], cfg.k, data["se_gli"], se_full)
    _, z_ctrl = critical_start(data["starts"], data["control"], data["full"], cfg.k, data["se_control"], se_full)
    reps = (_resample(data, np.random.default_rng([cfg.seed, b])) for b in range(cfg.n_bootstrap))
    boots = [critical_start(data["starts"], r["gli"], r["full"], cfg.k, data["se_gli"], se_full)[0] for r in reps]
    # diagnostic: the excess with standard errors from the seeds' spread alone (two degrees of freedom)
    s = data["full"].size
    seed_se = np.sqrt(data["gli"].var(axis=1, ddof=1) / s + data["full"].var(ddof=1) / s)
    z_seeds = (data["gli"].mean(axis=1) - data["full"].mean()) / seed_se
    finite = np.array([b for b in boots if np.isfinite(b)])
    lo, hi = window(cfg, sch)
    return {
        "criterion": decide.__doc__,
        "critical_start": t_star,
        "critical_start_log_snr": float(sch.log_snr(t_star)) if np.isfinite(t_star) else None,
        "critical_start_interval": [float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))]
        if finite.size
        else None,
        "window_log_snr": [lo, hi],
        "window_t": [float(sch.t_of_snr(np.exp(hi))), float(sch.t_of_snr(np.exp(lo)))],
        "predictions_t": {"gaussian_instability": T_GAUSSIAN, "network_crossing": T_NETWORK},
        "gates": g,
        "verdict": verdict.to_dict(),
        "starts": data["starts"],
        "full_fd": data["full"],
        "gli_fd": data["gli"],
        "control_fd": data["control"],
        "gli_excess_se": z_gli,
        "control_excess_se": z_ctrl,
        "gli_excess_seed_se": z_seeds,
        "stderr": {"full": se_full, "gli": data["se_gli"], "control": data["se_control"]},
        "provenance": ex.provenance(cfg, prereg, seconds),
    }


def write(summary: dict, out: Path, tag: str = "") -> None:
    from statphys_diffusion._io import write_rows_csv

    sch = sd.DiscreteSchedule.linear(1000)
    rows = []
    for i, t in enumerate(summary["starts"]):
        for kind in KINDS:
            v = np.asarray(summary[f"{kind}_fd"])[i]
            rows.append(
                {
                    "t_start": float(t),
                    "log_snr": float(sch.log_snr(t)),
                    "kind": kind,
                    "fd_own": float(v.mean()),
                    "fd_own_stderr": float(v.std(ddof=1) / np.sqrt(v.size)),
                    "excess_se": float(np.asarray(summary[f"{kind}_excess_se"])[i]),
                }
            )
    full = np.asarray(summary["full_fd"])
    rows.append({"t_start": 1000.0, "log_snr": float(sch.log_snr(1000.0)), "kind": "full", "fd_own": float(full.mean()),
                 "fd_own_stderr": float(full.std(ddof=1) / np.sqrt(full.size)), "excess_se": 0.0})  # fmt: skip
    write_rows_csv(out / f"{NAME}{tag}.csv", rows)
    ex.write_json(out / f"{NAME}{tag}.json", summary)
    figure(summary, out / f"{NAME}{tag}.png")


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sch = sd.DiscreteSchedule.linear(1000)
    ts = np.asarray(summary["starts"])
    lsnr = np.array([float(sch.log_snr(t)) for t in ts])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    full = np.asarray(summary["full_fd"])
    stderr = summary.get("stderr") or {}
    m = full.mean()
    se = float(stderr["full"]) if "full" in stderr else full.std(ddof=1) / np.sqrt(full.size)
    ax.axhspan(m - 2 * se, m + 2 * se, color="0.85", label="full chain (t = 1000), +-2 s.e.")
    for kind, colour, label in (("gli", "C0", "GLI start"), ("control", "C3", "N(0, I) start")):
        v = np.asarray(summary[f"{kind}_fd"])
        err = np.asarray(stderr[kind]) if kind in stderr else v.std(axis=1, ddof=1) / np.sqrt(v.shape[1])
        ax.errorbar(lsnr, v.mean(axis=1), yerr=2 * err, marker="o", ms=3, color=colour,
                    label=f"{label} (+-2 s.e.)", capsize=2)  # fmt: skip
    lo, hi = summary["window_log_snr"]
    ax.axvspan(lo, hi, color="C2", alpha=0.12, label="predicted window")
    if summary["critical_start"] is not None and np.isfinite(summary["critical_start"]):
        ax.axvline(float(sch.log_snr(summary["critical_start"])), color="C0", ls="--", lw=1, label="critical start t*")
    ax.set_xlabel("log-SNR of the start (left: early, t = 990; right: late, t = 60)")
    ax.set_ylabel("FD_own to the test images")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    v = summary["verdict"]
    title = f"Gaussian late start, every 5th DDPM step: {v['outcome']} (stability {v['stability']:.2f})"
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def main(argv=None) -> dict:
    args = ex.parser(__doc__, "a toy network and few samples: the pipeline only", runs=False).parse_args(argv)
    cache, out = ex.destinations(args, JOBS)
    out.mkdir(parents=True, exist_ok=True)
    timer = ex.Timer()
    if args.reference_check:
        report = {}
        for stand_in in ("ref-gaussian", "ref-classes"):
            cfg = dataclasses.replace(REFERENCE, network=stand_in)
            summary = summarise(measure(cfg, args.data, cache, args.progress), cfg, "reference check", timer.seconds)
            keep = ("critical_start", "critical_start_interval", "gates", "verdict", "starts", "full_fd", "gli_fd",
                    "control_fd", "stderr", "window_log_snr", "gli_excess_se", "control_excess_se")  # fmt: skip
            report[stand_in] = {k: summary[k] for k in keep}
            figure(summary, ex.PREREGISTRATIONS / f"{NAME}_reference_{stand_in}.png")
            print(stand_in, report[stand_in])
        ex.write_json(ex.PREREGISTRATIONS / f"{NAME}_reference_check.json", report)
        return report
    cfg = QUICK if args.quick else FULL
    _, prereg = ex.preregistration(NAME, require_committed=not args.quick)
    summary = summarise(measure(cfg, args.data, cache, args.progress), cfg, prereg, timer.seconds)
    write(summary, out, "_quick" if args.quick else "")
    print(summary["verdict"], summary["critical_start"], summary["gates"])
    return summary


if __name__ == "__main__":
    main()
