"""Result 1 replicated on new classes (issue 34): the reference check and the network's training.

Pre-registration (draft until this script's reference check is committed):
``validation/preregistrations/entropy_replication.md``. Classes {automobile, truck} (vehicles) and
{cat, dog} (animals) of CIFAR-10 at 16 x 16; the ``small`` class-conditional UNet with the committed
R1 network's objective (EDM preconditioning, log-normal noise, label dropout 0.2) trained from
scratch with a fresh seed for 47,000 steps of batch 64 (3.0M images).

Modes:

* ``--reference-check`` (before registration): the exact class-Gaussian mixture of the 20,000
  training images (``seeds`` independent Monte Carlo runs) and their exact empirical model, on the
  four decision problems of ``network_entropy.py`` (Y, the superclass S, and each fine pair given S),
  by the same cached jobs; the evaluation classifier's 4-class accuracy on these classes' test
  images; and the power rule: chains per class so that the reference's largest class-peak separation
  is at least 3 combined standard errors. Writes
  ``preregistrations/entropy_replication_reference_check.json``.
* ``--train-only``: train (or resume) the network, checkpointed every 250 steps, and export its
  float16 weights to ``weights/`` when finished. Refuses while the pre-registration is a draft or
  uncommitted.

* (no mode flag) the measurement: the joint estimator's tracks on the trained network (250 DDPM
  steps, chains per class from the committed reference check's power rule, in cached jobs of 100
  chains per class), its 1,000-step check, the gates G1 (numerics), G2 (path against marginal
  posterior by probability-flow likelihoods), G3 (the evaluation classifier agrees with the
  conditioning class), the diagnostics (null-head residual, the regime map's consistency), the
  criteria (a)-(c) with bootstrap errors on every peak and the verdict with its stability. Writes
  ``figures/entropy_replication.{json,csv,png}``. Refuses while the pre-registration is a draft.
  ``--quick``: a tiny network on 8 x 8 images, the pipeline only.

Usage: python validation/entropy_replication.py --reference-check [--progress]
       python validation/entropy_replication.py --train-only
       python validation/entropy_replication.py [--progress]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _experiment as ex  # noqa: E402
import _networks  # noqa: E402
import network_entropy as ne  # noqa: E402
from _driver import save_figure, style  # noqa: E402

import statphys_diffusion as sd  # noqa: E402

NAME = "entropy_replication"
CLASSES = ("automobile", "truck", "cat", "dog")
SUPERCLASSES = {"vehicle": ("automobile", "truck"), "animal": ("cat", "dog")}
# the committed R1 network's objective, from scratch, a fresh seed, the 3.0M-image budget
NETWORK = dict(
    _networks.FOUR,
    classes=CLASSES,
    train=dict(_networks.FOUR["train"], steps=47_000, seed=2),
)


@dataclass(frozen=True)
class Config:
    """The reference check's sizes (the pre-registration states them)."""

    mode: str
    n_times: int  # grid t = 2 to 990, geometric
    n_class_gaussian: int  # Monte Carlo draws per exact class-Gaussian job
    n_empirical: int
    seeds: int  # independent class-Gaussian runs (the seed spread of every predicted peak)
    n_bootstrap: int
    separation_z: float  # the power rule's target separation, in combined standard errors


FULL = Config("full", 36, 1500, 4000, 3, 200, 3.0)
QUICK = Config("quick", 8, 60, 60, 2, 20, 3.0)

# gate G2's estimator: the marginal class posterior from probability-flow log-likelihoods of the conditional
# heads (sd.flow_log_likelihood), checked here on the exact class-Gaussian, where the posterior is exact
FLOW = {"times": (150.0, 300.0, 500.0), "n_points": 16, "n_probes": 16, "n_steps": 60}
FLOW_QUICK = {"times": (300.0,), "n_points": 2, "n_probes": 2, "n_steps": 4}


def network_config(data, runs) -> dict:
    return dict(NETWORK, data=str(data), runs=str(runs))


def _exact_jobs(cfg: Config, net: dict) -> list[dict]:
    ts = np.geomspace(2.0, 990.0, cfg.n_times).tolist()
    jobs = []
    for seed in range(cfg.seeds):
        for i, prob in enumerate(ne.PROBLEMS):
            jobs.append({"kind": "exact", "reference": "class_gaussian", "problem": prob, "times": ts,
                         "n": cfg.n_class_gaussian, "seed": 100 * seed + 10 + i, "net": net,
                         "n_bootstrap": cfg.n_bootstrap})  # fmt: skip
    for i, prob in enumerate(ne.PROBLEMS):
        jobs.append({"kind": "exact", "reference": "empirical", "problem": prob, "times": ts, "n": cfg.n_empirical,
                     "seed": 10 + i, "net": net, "n_bootstrap": cfg.n_bootstrap})  # fmt: skip
    return jobs


def classifier_accuracy(net: dict) -> float:
    """The evaluation classifier's accuracy among the four classes on their 4,000 test images."""
    from statphys_diffusion import datasets

    test = datasets.load_cifar10(net["data"], "test", classes=net["classes"], size=net["size"], progress=False)
    meta = {"in_channels": 3, "size": net["size"]}
    pred = ne._classify(net, meta, _networks.flat_points(test.images))
    return float(np.mean(pred == test.labels))


def flow_precision(net: dict, spec: dict, seed: int = 0) -> dict:
    """How well G2's marginal-posterior estimator recovers H(Y | x_t) where it is known: on the exact
    class-Gaussian of the training set, draws x_t at each time, the class posterior from the flow
    log-likelihood of each class's conditional model against the exact one; mean and largest |Delta H| per
    point, and the difference of the mean entropies (what G2 compares), in nats."""
    x, y = ne._train_points(json.dumps(ne._cfg_of({"net": net}), sort_keys=True))
    gm = sd.GaussianMixture.fit(x, y, schedule=ne._schedule(net))
    rng = np.random.default_rng(seed)

    def entropy(p):
        p = np.clip(p, 1e-300, 1.0)
        return -(p * np.log(p)).sum(axis=1)

    out = []
    for t in spec["times"]:
        d = gm.sample(spec["n_points"], t, rng=rng)
        ll = np.stack(
            [sd.flow_log_likelihood(gm, d.x, t, y=c, n_steps=spec["n_steps"], n_probes=spec["n_probes"], rng=seed + 1)
             for c in range(len(gm.classes))], axis=1,
        )  # fmt: skip
        lw = ll + np.log(gm.class_weights)[None]
        post = np.exp(lw - lw.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        h_flow, h_exact = entropy(post), entropy(gm.class_posterior(d.x, t))
        out.append({"t": t, "H_exact_mean": float(h_exact.mean()), "H_flow_mean": float(h_flow.mean()),
                    "mean_abs_dH": float(np.abs(h_flow - h_exact).mean()),
                    "max_abs_dH": float(np.abs(h_flow - h_exact).max()),
                    "dH_of_means": float(h_flow.mean() - h_exact.mean())})  # fmt: skip
    return {"spec": spec, "by_time": out}


def power_rule(per_seed: list[dict], n_draws: int, z: float) -> dict:
    """Chains per class for the network so that the reference's largest class-peak separation reaches ``z``
    combined standard errors, from the reference's per-class peak standard errors at ``n_draws`` draws
    (n_draws / 4 per class) scaled as 1 / sqrt(count)."""
    peaks = np.array([s["class"]["log_snr_peak_time"] for s in per_seed])  # (seeds, 4)
    ses = np.array([s["class"]["log_snr_peak_time_stderr"] for s in per_seed])
    mean_peak, se = peaks.mean(axis=0), np.sqrt((ses**2).mean(axis=0))
    i, j = np.unravel_index(np.argmax(np.abs(mean_peak[:, None] - mean_peak[None, :])), (4, 4))
    sep = float(abs(mean_peak[i] - mean_peak[j]))
    se_pair = float(np.hypot(se[i], se[j]))
    per_class = n_draws / 4.0
    chains = int(np.ceil(per_class * (z * se_pair / sep) ** 2)) if sep > 0 else None
    return {"classes": [CLASSES[i], CLASSES[j]], "separation_t": sep, "stderr_at_reference": se_pair,
            "reference_draws_per_class": per_class, "chains_per_class": chains, "z": z}  # fmt: skip


def chains_for_power(power_rule_output: dict, power: float = 0.8) -> int:
    """Chains per class so that (b)'s test (separation above ``z`` combined standard errors) passes with
    probability ``power`` if the network's class peaks are the reference's: the expected separation at
    z + Phi^-1(power) standard errors, the standard error scaling as 1 / sqrt(chains)."""
    from scipy.stats import norm

    p = power_rule_output
    target = (p["z"] + norm.ppf(power)) * p["stderr_at_reference"] / p["separation_t"]
    return int(np.ceil(p["reference_draws_per_class"] * target**2))


def reference_check(cfg: Config, data, runs: Path, progress: bool) -> dict:
    from statphys_diffusion import datasets

    data = data or datasets.find_cifar10()
    if data is None:
        raise SystemExit("CIFAR-10 not found: pass --data")
    net = network_config(data, runs)
    jobs = _exact_jobs(cfg, net)
    cache = None if cfg.mode == "quick" else ex.ROOT / "validation" / "jobs" / NAME
    res = sd.run_sweep(ne.job, jobs, cache_dir=cache, progress=progress, desc=f"{NAME} references")
    by_seed: dict = {}
    empirical = {}
    for j, r in zip(jobs, res):
        if j["reference"] == "empirical":
            empirical[j["problem"]] = r
        else:
            by_seed.setdefault(j["seed"] // 100, {})[j["problem"]] = r
    seeds = [by_seed[s] for s in sorted(by_seed)]

    def peaks(problem):
        return [s[problem]["total_log_snr_peak_time"] for s in seeds]

    coarse = np.array(peaks("superclass"))
    fine = {p: np.array(peaks(p)) for p in ("vehicle", "animal")}
    margin = np.minimum(coarse - fine["vehicle"], coarse - fine["animal"])  # > 0: coarse first, in steps
    out = {
        "classes": list(CLASSES),
        "superclasses": SUPERCLASSES,
        "class_gaussian": {
            "total_peak_t": peaks("class"),
            "superclass_peak_t": coarse.tolist(),
            "fine_peak_t": {p: v.tolist() for p, v in fine.items()},
            "coarse_first_margin_t": margin.tolist(),
            "coarse_first_margin_t_mean": float(margin.mean()),
            "coarse_first_margin_t_min": float(margin.min()),
            "class_peak_t": [s["class"]["log_snr_peak_time"] for s in seeds],
            "class_peak_t_stderr": [s["class"]["log_snr_peak_time_stderr"] for s in seeds],
        },
        "empirical": {p: {"total_peak_t": r["total_log_snr_peak_time"]} for p, r in empirical.items()},
        "power": power_rule(seeds, cfg.n_class_gaussian, cfg.separation_z),
        "config": dataclasses.asdict(cfg),
    }
    out["flow_precision"] = flow_precision(net, FLOW_QUICK if cfg.mode == "quick" else FLOW)
    if cfg.mode != "quick":
        out["classifier_accuracy_4_classes"] = classifier_accuracy(net)
    return out


def train(runs: Path, data) -> dict:
    """Train (or resume) the network and export its float16 weights; needs the registered pre-registration."""
    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import export_weights

    _, digest = ex.preregistration(NAME, require_committed=True)
    if "Status: draft" in (ex.PREREGISTRATIONS / f"{NAME}.md").read_text():
        raise SystemExit(f"{NAME}.md is still a draft: register it (after its reference check) before training")
    from statphys_diffusion.nets import TrainConfig
    from statphys_diffusion.nets.run import cached_run

    data = data or datasets.find_cifar10()
    net = network_config(data, runs)
    tc = TrainConfig(**net["train"])
    # cached_run resumes from the last checkpoint (every 250 steps) and locks the run directory
    kw = _networks._conditional_kwargs(net)
    run = cached_run(net["runs"], data_path=net["data"], progress=True, train_config=tc, **kw)
    info = {"preregistration_sha256": digest, "run": str(run)}
    info["weights"] = str(export_weights(run, _networks.committed_weights(net)))
    print(info)
    return info


# -- the measurement (needs the registered pre-registration) ---------------------------------------------

G1_SUP_DH = 0.05  # nats: sup over t of the 250- and 1,000-step mean entropy profiles' difference
G1_PEAK_Z = 2.0  # their total peaks within this many combined standard errors
G2_NATS = 0.1  # |mean H_path - mean H_marg| at each of G2's times
G3_FRACTION = 0.9  # classifier agreement at least this share of its 4-class test accuracy
QUICK_NETWORK = dict(_networks.QUICK_FOUR, classes=CLASSES)


@dataclass(frozen=True)
class Measure:
    """The measurement's sizes (the pre-registration states them)."""

    steps: int  # DDPM ancestral steps of the joint estimator
    coarse: int  # every coarse-th grid time (the committed R1's 5: a spacing of 20 in t)
    chains_per_job: int  # per class, per cached job
    check_steps: int  # G1's finer run
    check_coarse: int  # the same spacing in t as steps / coarse
    check_chains: int  # per class, G1's finer run
    check_per_job: int
    n_null: int  # unconditional chains (a diagnostic)
    g2_chains: int  # per class: the joint chains whose states G2 reads at its times
    n_low_times: int  # the null-head residual's grid, t = 1 to 100 (a diagnostic)
    n_bootstrap: int
    n_resamples: int  # the verdict's stability
    n_regime_times: int
    regime_points: int


MEASURE_FULL = Measure(250, 5, 100, 1000, 20, 100, 25, 240, 16, 12, 200, 200, 8, 128)
MEASURE_QUICK = Measure(20, 1, 4, 40, 2, 4, 4, 8, 2, 5, 30, 20, 5, 32)


def _pack(a) -> dict:
    """A float64 array as JSON (base64 of its bytes: the cache keeps it exactly)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "float64_b64": base64.b64encode(a.tobytes()).decode("ascii")}


def _unpack(d: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["float64_b64"]), dtype=np.float64).reshape(d["shape"]).copy()


def thin(track, schedule, coarse: int):
    """The rows of ``track`` that ``track.entropy_rate(schedule, coarse=coarse)`` reads (times above
    t_min, every ``coarse``-th from the smallest up) and its last row (the final decision), as a track in
    decreasing time whose ``entropy_rate(schedule, coarse=1)`` is the original's: what a job keeps."""
    times = np.asarray(track.times, dtype=np.float64)
    keep = np.flatnonzero(times > float(schedule.t_min))
    rows = keep[np.argsort(times[keep])][::coarse][::-1].tolist()
    if times[-1] <= float(schedule.t_min):
        rows.append(times.size - 1)
    m = track.log_posterior.shape[1]
    return sd.OnlineTrack(times=times[rows], x=np.zeros((m, 0)), classes=np.asarray(track.classes),
                          log_posterior=track.log_posterior[rows], trajectory=None, labels=track.labels)  # fmt: skip


def merge(parts: list[dict], classes):
    """One track from the jobs' thinned tracks (same grid; chains concatenated)."""
    times = np.asarray(parts[0]["times"])
    for p in parts[1:]:
        if not np.array_equal(np.asarray(p["times"]), times):
            raise ValueError("merge: the jobs' tracks are on different grids")
    lp = np.concatenate([_unpack(p["log_posterior"]) for p in parts], axis=1)
    labels = None if parts[0]["labels"] is None else np.concatenate([np.asarray(p["labels"]) for p in parts])
    return sd.OnlineTrack(times=times, x=np.zeros((lp.shape[1], 0)), classes=np.asarray(classes), log_posterior=lp,
                          trajectory=None, labels=labels)  # fmt: skip


def _entropy(logp: np.ndarray) -> np.ndarray:
    p = np.exp(logp)
    return -np.where(p > 0, p * logp, 0.0).sum(axis=-1)


def _g2(model, sch, job: dict, rng) -> dict:
    """G2 (pre-registration): on joint chains (their states kept), at the grid times nearest G2's times,
    the path posterior (the tracked one) against the marginal posterior p(y | x_t) proportional to
    p_t(x_t | y) (uniform class weights: the four classes have 5,000 training images each), log p_t(x_t | y)
    from each conditional head's probability flow (``sd.flow_log_likelihood``, the same probes for every
    class)."""
    from scipy.special import logsumexp

    track = sd.OnlineClassifier(job["steps"]).run(
        model, n=job["n"], classes=np.arange(len(CLASSES)), chains="joint", rng=rng, return_trajectory=True
    )
    spec = job["flow"]
    out = []
    for target in spec["times"]:
        i = int(np.argmin(np.abs(track.times - target)))
        t, x = float(track.times[i]), track.trajectory[i]
        ll = np.stack([sd.flow_log_likelihood(model, x, t, y=c, n_steps=spec["n_steps"], n_probes=spec["n_probes"],
                                              rng=job["seed"] + 1) for c in range(len(CLASSES))], axis=1)  # fmt: skip
        h_path = _entropy(track.log_posterior[i])
        h_marg = _entropy(ll - logsumexp(ll, axis=1, keepdims=True))
        n = h_path.size
        out.append({"t": t, "H_path_mean": float(h_path.mean()), "H_marg_mean": float(h_marg.mean()),
                    "H_path_stderr": float(h_path.std(ddof=1) / np.sqrt(n)),
                    "H_marg_stderr": float(h_marg.std(ddof=1) / np.sqrt(n)),
                    "dH_of_means": float(h_path.mean() - h_marg.mean()),
                    "mean_abs_dH": float(np.abs(h_path - h_marg).mean())})  # fmt: skip
    return {"by_time": out, "points_per_time": int(track.x.shape[0])}


def measure_job(job: dict) -> dict:
    """One cached unit of the measurement: a block of tracked chains (thinned), G2, or the diagnostics."""
    import torch

    torch.set_num_threads(int(job.get("threads", 2)))
    cfg = ne._cfg_of(job)
    key = json.dumps(cfg, sort_keys=True)
    model, meta = ne._network(key)
    sch = ne._schedule(cfg)
    rng = np.random.default_rng(job["seed"])
    t0 = time.time()
    if job["kind"] == "g2":
        return dict(_g2(model, sch, job, rng), seconds=time.time() - t0)
    if job["kind"] == "diagnostics":  # the regime map of the committed R1 (its consistency column)
        x_train, y_train = ne._train_points(key)
        from statphys_diffusion import datasets

        test = datasets.load_cifar10(cfg["data"], "test", classes=cfg["classes"], size=cfg["size"], progress=False)
        pick = rng.choice(len(test.images), min(job["n_held"], len(test.images)), replace=False)
        refs = {"empirical": sd.EmpiricalDistribution(x_train, labels=y_train, schedule=sch),
                "class_gaussian": sd.GaussianMixture.fit(x_train, y_train, schedule=sch)}  # fmt: skip
        t_reg = np.geomspace(3.0, 900.0, job["n_times"])
        held = _networks.flat_points(test.images[pick])
        rmap = sd.regime_map(model, x_train, held, t_reg, references=refs, labels=y_train,
                             n_points=job["n_points"], consistency_steps=job["steps"], rng=rng)  # fmt: skip
        return {"t": t_reg.tolist(), "consistency": rmap.consistency.tolist(), "regime": list(rmap.regime),
                "seconds": time.time() - t0}  # fmt: skip
    track = sd.OnlineClassifier(job["steps"]).run(
        model, n=job["n"], classes=np.arange(len(CLASSES)), chains=job["chains"], rng=rng
    )
    th = thin(track, sch, job["coarse"])
    out = {"times": th.times.tolist(), "log_posterior": _pack(th.log_posterior),
           "labels": None if th.labels is None else np.asarray(th.labels).tolist()}  # fmt: skip
    if job["chains"] == "joint":  # G3: the evaluation classifier on the conditional samples
        out["classifier_labels"] = ne._classify(cfg, meta, track.x).tolist()
    if "residual_t" in job:  # the null-head residual on the joint chains' final samples (a diagnostic)
        r, se = ne._low_noise_residual(
            model, track.x, np.asarray(track.labels), np.asarray(job["residual_t"]), np.random.default_rng(6)
        )
        out["residual"], out["residual_stderr"] = r.tolist(), se.tolist()
    out["seconds"] = time.time() - t0
    return out


def _problems(track) -> dict:
    """The four decision problems of a joint (or null) track: Y, the superclass, each fine pair."""
    return {"class": track, "superclass": track.coarse(ne.GROUPS),
            "vehicle": track.restrict(ne.GROUPS[0]), "animal": track.restrict(ne.GROUPS[1])}  # fmt: skip


def _total_peak_stderr(track, sch, n_bootstrap: int, rng) -> float:
    """Bootstrap (over chains) standard error of the total rate's peak per unit log-SNR."""
    times = np.asarray(track.times, dtype=np.float64)
    keep = np.flatnonzero(times > float(sch.t_min))
    order = keep[np.argsort(times[keep])]
    ts = times[order]
    hd = np.gradient(track.entropy()[order].T, ts, axis=1)  # (M, T)
    er = track.entropy_rate(sch, coarse=1, n_bootstrap=1, rng=0)
    speed = np.asarray(er.log_snr_speed)
    if not np.allclose(hd.mean(axis=0) / speed, er.log_snr_rate, rtol=1e-9, atol=1e-12):
        raise AssertionError("the total profile here is not track_entropy_rate's")
    m = hd.shape[0]
    peaks = [ne._total_peak(ts, hd[rng.integers(0, m, m)].mean(axis=0) / speed) for _ in range(n_bootstrap)]
    return float(np.std(peaks, ddof=1))


def summaries(track, sch, n_bootstrap: int, rng, *, total_se: bool = True) -> dict:
    """``network_entropy``'s summary of each decision problem, with the total peak's bootstrap error."""
    out = {}
    for prob, tr in _problems(track).items():
        s = ne._summary(tr.entropy_rate(sch, coarse=1, n_bootstrap=n_bootstrap, rng=rng))
        if total_se:
            s["total_log_snr_peak_time_stderr"] = _total_peak_stderr(tr, sch, n_bootstrap, rng)
        out[prob] = s
    return out


def criteria_outcome(crit: dict) -> tuple[str, str]:
    """The decision rule on the criteria (a)-(c): all hold -> confirmed, none -> refuted, else partly."""
    held = {"(a) interior peak": crit["interior_peak"], "(b) classes apart": crit["classes_apart"],
            "(c) coarse first": crit["coarse_first"]}  # fmt: skip
    yes = [k for k, v in held.items() if v]
    no = [k for k, v in held.items() if not v]
    if not no:
        return "confirmed", "(a), (b) and (c) hold"
    if not yes:
        return "refuted", "none of (a), (b), (c) holds"
    return "partly", f"holds: {', '.join(yes)}; fails: {', '.join(no)}"


def _stratified(track, rng):
    """A bootstrap resample of a joint track's chains within each generating class."""
    labels = np.asarray(track.labels)
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), int(np.sum(labels == c))) for c in np.unique(labels)])
    return sd.OnlineTrack(times=track.times, x=track.x[idx], classes=track.classes,
                          log_posterior=track.log_posterior[:, idx], trajectory=None, labels=labels[idx])  # fmt: skip


def decide(joint, gate: dict, sch, *, n_bootstrap: int, n_resamples: int, seed: int = 8):
    """The verdict: "not testable" if a gate failed, else the rule on the joint track and its stability
    over stratified bootstrap resamples of its chains (each resample's criteria from its own summaries)."""
    if not (gate["G1_passes"] and gate["G2_passes"] and gate["G3_passes"]):
        failed = [k for k in ("G1", "G2", "G3") if not gate[f"{k}_passes"]]
        return ex.Verdict("not testable", f"gates failed: {failed}", 1.0, 0)
    rng = np.random.default_rng(seed)

    def rule(track):
        return criteria_outcome(ne._criteria(summaries(track, sch, n_bootstrap, rng, total_se=False)))

    return ex.decide(rule, joint, _stratified, n_resamples=n_resamples, rng=seed)


def gates(joint_s: dict, check_s: dict, g2: dict, agreement: float, accuracy: float) -> dict:
    """G1-G3 of the pre-registration, each with its measured value and threshold."""
    a, b = joint_s["class"], check_s["class"]
    ta, tb = np.asarray(a["times"]), np.asarray(b["times"])
    lo, hi = max(ta.min(), tb.min()), min(ta.max(), tb.max())
    inside = (ta >= lo) & (ta <= hi)
    dh = np.abs(np.asarray(a["entropy"])[inside] - np.interp(ta[inside], tb, np.asarray(b["entropy"])))
    z = abs(a["total_log_snr_peak_time"] - b["total_log_snr_peak_time"]) / np.hypot(
        a["total_log_snr_peak_time_stderr"], b["total_log_snr_peak_time_stderr"]
    )
    g2_d = [abs(r["dH_of_means"]) for r in g2["by_time"]]
    return {
        "G1_sup_abs_dH_nats": float(dh.max()),
        "G1_total_peaks_t": [a["total_log_snr_peak_time"], b["total_log_snr_peak_time"]],
        "G1_total_peaks_z": float(z),
        "G1_passes": bool(dh.max() <= G1_SUP_DH and z <= G1_PEAK_Z),
        "G2_by_time": g2["by_time"],
        "G2_max_abs_dH_of_means_nats": float(max(g2_d)),
        "G2_passes": bool(max(g2_d) <= G2_NATS),
        "G3_classifier_agreement": float(agreement),
        "G3_threshold": float(G3_FRACTION * accuracy),
        "G3_classifier_accuracy_4_classes": float(accuracy),
        "G3_passes": bool(agreement >= G3_FRACTION * accuracy),
        "thresholds": {
            "G1_sup_abs_dH_nats": G1_SUP_DH,
            "G1_peaks_z": G1_PEAK_Z,
            "G2_nats": G2_NATS,
            "G3_fraction_of_accuracy": G3_FRACTION,
        },  # fmt: skip
    }


def measure(quick: bool, data, runs: Path, cache, out: Path, progress: bool) -> dict:
    """The measurement on the network (module docstring); returns the summary it writes."""
    from statphys_diffusion import datasets

    mz = MEASURE_QUICK if quick else MEASURE_FULL
    _, digest = ex.preregistration(NAME, require_committed=not quick)
    if not quick and "Status: draft" in (ex.PREREGISTRATIONS / f"{NAME}.md").read_text():
        raise SystemExit(f"{NAME}.md is still a draft: register it before measuring")
    timer = ex.Timer()
    data = data or datasets.find_cifar10()
    if data is None:
        raise SystemExit("CIFAR-10 not found: pass --data")
    net = dict(QUICK_NETWORK if quick else NETWORK, data=str(data), runs=str(runs))
    weights = _networks.committed_weights(net)
    if not quick and not weights.is_file():  # else a job would train it, unseen
        raise SystemExit(f"the network is not trained yet ({weights} is missing): "
                         "run with --train-only first (resumable, about 1.7 hours on 2 cores)")  # fmt: skip
    if quick:
        reference, chains, accuracy = None, mz.chains_per_job, classifier_accuracy(net)
    else:
        reference = json.loads((ex.PREREGISTRATIONS / f"{NAME}_reference_check.json").read_text())
        # the registered count: 80% power for criterion (b) if the network equals the reference
        chains = max(chains_for_power(reference["power"]), mz.check_chains)
        accuracy = float(reference["classifier_accuracy_4_classes"])
    n_jobs = -(-chains // mz.chains_per_job)
    t_low = np.geomspace(1.0, 100.0, mz.n_low_times)
    base = {"kind": "track", "net": net}
    joint_jobs = [dict(base, chains="joint", steps=mz.steps, coarse=mz.coarse, n=mz.chains_per_job, seed=1000 + i)
                  for i in range(n_jobs)]  # fmt: skip
    joint_jobs[0]["residual_t"] = t_low.tolist()
    check_jobs = [dict(base, chains="joint", steps=mz.check_steps, coarse=mz.check_coarse, n=mz.check_per_job,
                       seed=2000 + i) for i in range(-(-mz.check_chains // mz.check_per_job))]  # fmt: skip
    null_job = dict(base, chains="null", steps=mz.steps, coarse=mz.coarse, n=mz.n_null, seed=3000)
    g2_job = {"kind": "g2", "net": net, "steps": mz.steps, "n": mz.g2_chains, "seed": 4000,
              "flow": FLOW_QUICK if quick else FLOW}  # fmt: skip
    diag_job = {"kind": "diagnostics", "net": net, "steps": mz.steps, "seed": 5000, "n_held": 500,
                "n_times": mz.n_regime_times, "n_points": mz.regime_points}  # fmt: skip
    jobs = [*joint_jobs, *check_jobs, null_job, g2_job, diag_job]
    res = sd.run_sweep(measure_job, jobs, cache_dir=cache, progress=progress, desc=f"{NAME} network")
    joint = merge(res[:n_jobs], np.arange(len(CLASSES)))
    check = merge(res[n_jobs : n_jobs + len(check_jobs)], np.arange(len(CLASSES)))
    null_r, g2, diag = res[-3], res[-2], res[-1]
    null = merge([null_r], np.arange(len(CLASSES)))
    sch = ne._schedule(net)
    rng = np.random.default_rng(7)
    joint_s = summaries(joint, sch, mz.n_bootstrap, rng)
    check_s = summaries(check, sch, mz.n_bootstrap, rng)
    null_s = summaries(null, sch, mz.n_bootstrap, rng)
    clf = np.concatenate([np.asarray(r["classifier_labels"]) for r in res[:n_jobs]])
    agreement = float(np.mean(clf == np.asarray(joint.labels)))
    g = gates(joint_s, check_s, g2, agreement, accuracy)
    crit = ne._criteria(joint_s)
    verdict = decide(joint, g, sch, n_bootstrap=mz.n_bootstrap, n_resamples=mz.n_resamples)
    r0 = res[0]
    resid = np.asarray(r0["residual"])
    ls_low = np.asarray(sch.log_snr(t_low), dtype=np.float64)
    summary = {
        "criterion": PREDICTION,
        "classes": list(CLASSES),
        "superclasses": SUPERCLASSES,
        "chains_per_class": {
            "joint": n_jobs * mz.chains_per_job,
            "check": len(check_jobs) * mz.check_per_job,
            "null_total": mz.n_null,
            "g2": mz.g2_chains,
        },  # fmt: skip
        "gates": g,
        "criteria": crit,
        "verdict": verdict.to_dict(),
        "diagnostics": {
            "null_head_residual_t": t_low.tolist(),
            "null_head_residual": resid.tolist(),
            "null_head_residual_stderr": r0["residual_stderr"],
            "null_head_residual_integral_nats": ne._low_noise_integral(resid, t_low, ls_low),
            "regime_t": diag["t"],
            "regime": diag["regime"],
            "consistency": diag["consistency"],
        },
        "network_joint": joint_s,
        "network_joint_1000": check_s,
        "network_null": null_s,
        "reference": None if reference is None else {k: reference[k] for k in ("class_gaussian", "empirical", "power")},
        "job_seconds": float(sum(r.get("seconds", 0.0) for r in res)),
        "provenance": ex.provenance(dataclasses.asdict(mz), digest, timer.seconds),
    }
    tag = "_quick" if quick else ""
    out.mkdir(parents=True, exist_ok=True)
    exact = reference_profiles(quick, net, cache)
    write_outputs(summary, exact, out / f"{NAME}{tag}")
    return summary


PREDICTION = (
    "Pre-registered (validation/preregistrations/entropy_replication.md): with G1-G3 passed, confirmed if (a) the "
    "network's rate of H(Y | X_t) per unit log-SNR has an interior maximum at least 3x its mean over the three "
    "smallest times, (b) two classes peak more than 3 combined standard errors apart and (c) the superclass "
    "decision peaks at a larger t than both fine ones; refuted if none holds; partly otherwise. Stability: the "
    "share of 200 stratified bootstrap resamples of the chains giving the same verdict (below 80%: inconclusive)."
)


def reference_profiles(quick: bool, net: dict, cache) -> dict:
    """The exact class-Gaussian profiles of the reference check (first seed), from its job cache."""
    cfg = QUICK if quick else FULL
    jobs = [j for j in _exact_jobs(cfg, net) if j["reference"] == "class_gaussian" and j["seed"] < 100]
    ref_cache = None if quick else ex.ROOT / "validation" / "jobs" / NAME
    res = sd.run_sweep(ne.job, jobs, cache_dir=ref_cache, progress=False)
    return {j["problem"]: r for j, r in zip(jobs, res)}


def write_outputs(summary: dict, exact: dict, stem: Path) -> None:
    """``stem``.json, .csv (per source, problem and t: H, its rate per unit log-SNR, their errors) and .png."""
    from statphys_diffusion._io import write_rows_csv

    sources = {"network_joint": summary["network_joint"], "network_joint_1000": summary["network_joint_1000"],
               "network_null": summary["network_null"], "class_gaussian": exact}  # fmt: skip
    rows = []
    for src, by in sources.items():
        for prob, s in by.items():
            for i, t in enumerate(s["times"]):
                rows.append({"source": src, "problem": prob, "t": t, "entropy": s["entropy"][i],
                             "entropy_stderr": s["entropy_stderr"][i], "log_snr_rate": s["log_snr_rate"][i],
                             "log_snr_rate_stderr": s["log_snr_rate_stderr"][i]})  # fmt: skip
    write_rows_csv(stem.with_suffix(".csv"), rows)
    ex.write_json(stem.with_suffix(".json"), summary)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    styles = {
        "network_joint": ("C0", "network, joint (250 steps)"),
        "network_joint_1000": ("C1", "network, joint (1,000)"),
        "class_gaussian": ("k", "exact class-Gaussian"),
    }
    for ax, prob in zip(axes, ("class", "superclass", "vehicle", "animal")):
        for src, (colour, label) in styles.items():
            s = sources[src][prob]
            t, r, se = (np.asarray(s[k]) for k in ("times", "log_snr_rate", "log_snr_rate_stderr"))
            r, se = np.abs(r), np.abs(se)  # per unit of falling log-SNR: positive where H grows with t
            ax.plot(t, r, color=colour, lw=1.2, label=label)
            ax.fill_between(t, r - 2 * se, r + 2 * se, color=colour, alpha=0.18, lw=0)
            ax.axvline(s["total_log_snr_peak_time"], color=colour, ls=":", lw=0.8)
        title = {"class": "Y (4 classes)", "superclass": "superclass", "vehicle": "automobile | truck",
                 "animal": "cat | dog"}[prob]  # fmt: skip
        style(ax, xlabel="t", title=title, xlog=True, legend=0).title.set_fontsize(9)
    axes[0].set_ylabel("|dH / d log SNR| (nats), +-2 s.e.")
    axes[0].legend(fontsize=6)
    v = summary["verdict"]
    fig.suptitle(f"R1 replication: {v['outcome']} (stability {v['stability']:.2f}); dotted: total peaks", fontsize=9)
    save_figure(fig, stem.with_suffix(".png"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: the pipeline only")
    p.add_argument("--reference-check", action="store_true")
    p.add_argument("--train-only", action="store_true")
    p.add_argument("--runs", default="runs", help="training runs (relative to the repository root)")
    p.add_argument("--data", default=None)
    p.add_argument(
        "--out",
        default=None,
        help="the reference check's JSON (default: beside the pre-registration) "
        "or the measurement's folder (default: figures/)",
    )
    p.add_argument(
        "--cache",
        default=None,
        help="the measurement's job cache (default: validation/jobs/entropy_replication; none in --quick)",
    )
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    runs = ex.ROOT / args.runs
    if args.train_only:
        return train(runs, args.data)
    if not args.reference_check:
        cache = Path(args.cache) if args.cache else (None if args.quick else ex.ROOT / "validation" / "jobs" / NAME)
        out_dir = Path(args.out) if args.out else ex.ROOT / "figures"
        return measure(args.quick, args.data, runs, cache, out_dir, args.progress)
    cfg = QUICK if args.quick else FULL
    out = reference_check(cfg, args.data, runs, args.progress)
    path = Path(args.out) if args.out else ex.PREREGISTRATIONS / f"{NAME}_reference_check.json"
    ex.write_json(path, out)
    print(json.dumps({k: v for k, v in out.items() if k in ("class_gaussian", "power")}, indent=1, default=str)[:2000])
    return out


if __name__ == "__main__":
    main()
