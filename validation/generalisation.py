"""What does a trained network compute? The generalising analytic models held against networks (issue 33).

Pre-registration: ``validation/preregistrations/generalisation.md`` (claims, gates, power and decision
rule, committed before any full run; its SHA-256 is in every output). For each network and its own
training set, six models are compared on equal terms: the exact empirical model, the Gaussian of the
training set (full covariance; its rank is stated), LS and ELS (Kamb & Ganguli), PSPC (Niedoba et
al.), the data-driven locality model (after Lukoianov et al.), and a per-noise-level composite (at
each calibration time the model calibrated closest to the network's denoiser). Each patch model's
size is calibrated per noise level on noised held-out images (:func:`sd.calibrate_patch_size`).

Measured per network and model, from the same initial noise under one deterministic sampler (DDIM,
eta = 0, the DDPM grid): the per-sample r^2 of the model's sample against the network's
(:func:`sd.sample_agreement`; median and fraction above 0.8 with bootstrap intervals) and the
per-pixel MSE to the network's denoiser per noise level on noised held-out and training images.

Networks (full mode): ``purpose``, an unconditional ``small`` UNet trained here on N = 5,000 CIFAR-10
images at 16 x 16 (EDM preconditioning and log-normal noise, as the R1 network; about 90 minutes on 2
cores, resumable); ``small50k``, the committed class-conditional ``small`` UNet on all 50,000 images
(its null-label prediction; ELS on a stated subset); the committed ``tiny`` memorisation family
(N = 11 to 512). ``--quick``: a ``tiny`` UNet trained 40 steps on 48 images at 8 x 8, the pipeline only.

Outputs in ``--out`` (default figures/): ``generalisation.json`` (criterion, gates, verdicts,
provenance), ``generalisation.csv`` (one row per network x model), ``generalisation_mse.csv`` (one
row per network x model x noise level), ``generalisation.png`` (samples side by side) and
``generalisation_r2.png`` (r^2 distributions). Jobs are cached in ``--cache`` (``run_sweep``): a
killed run resumes.

Usage: python validation/generalisation.py [--quick] [--network purpose|small50k|tiny|all ...] [--jobs-only]
       [--reference-check] [--out DIR] [--cache DIR] [--runs DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _experiment as ex  # noqa: E402
from _driver import save_figure  # noqa: E402

import statphys_diffusion as sd  # noqa: E402

NAME = "generalisation"
LOCAL = ("LS", "ELS", "PSPC", "locality")
MODELS = ("empirical", "gaussian", *LOCAL, "composite")


@dataclass(frozen=True)
class Config:
    """One mode's sizes (the pre-registration states the full one)."""

    mode: str
    size: int
    n_samples: int
    ddim_steps: int
    log_snr: tuple  # calibration noise levels, in log-SNR of the DDPM linear schedule
    ls_sizes: tuple
    pspc_sizes: tuple
    thresholds: tuple
    n_calibration: int
    n_mse: int
    n_bootstrap: int
    purpose_n: int
    purpose_steps: int
    purpose_config: str
    els_subset: int
    tiny_ns: tuple
    n_batches: int = 4  # initial noises per sample job: n_samples / n_batches
    seed: int = 0


FULL = Config(
    mode="full",
    size=16,
    n_samples=200,
    ddim_steps=20,
    log_snr=(-6.0, -3.0, -1.0, 1.0, 3.0, 5.0),
    ls_sizes=(1, 3, 5, 7, 9, 11, 15),
    pspc_sizes=(2, 4, 6, 8, 12, 16),
    thresholds=(0.0, 0.05, 0.1, 0.2, 0.4),
    n_calibration=64,
    n_mse=128,
    n_bootstrap=1000,
    purpose_n=5000,
    purpose_steps=14000,
    purpose_config="small",
    els_subset=5000,
    tiny_ns=(11, 16, 23, 32, 45, 64, 91, 128, 256, 512),
)
QUICK = Config(
    mode="quick",
    size=8,
    n_samples=8,
    ddim_steps=4,
    log_snr=(-2.0, 2.0),
    ls_sizes=(1, 3),
    pspc_sizes=(2, 8),
    thresholds=(0.0, 0.2),
    n_calibration=6,
    n_mse=6,
    n_bootstrap=100,
    purpose_n=48,
    purpose_steps=40,
    purpose_config="tiny",
    els_subset=48,
    tiny_ns=(),
    n_batches=2,
)

PURPOSE_TRAIN = {
    "batch_size": 64,
    "lr": 5e-4,
    "ema_decay": 0.999,
    "prediction": "edm",
    "noise": "lognormal",
    "checkpoint_every": 250,
}


# -- networks -------------------------------------------------------------------------------------------


def _purpose_run(cfg: Config, data):
    """(training ImageDataset, ``cached_run`` keyword arguments) of the purpose network: one definition
    for training it and for loading it."""
    from statphys_diffusion import datasets
    from statphys_diffusion.nets import TrainConfig

    ds = datasets.load_cifar10(data, "train", n=cfg.purpose_n, size=cfg.size, seed=0, nested=True, progress=False)
    spec = dict(PURPOSE_TRAIN)
    if cfg.mode == "quick":
        spec.update(batch_size=16, lr=2e-3, checkpoint_every=20)
    tc = TrainConfig(steps=cfg.purpose_steps, seed=0, **spec)
    kw = {"size": cfg.size, "n": cfg.purpose_n, "config": cfg.purpose_config, "nested": True, "train_config": tc}
    return ds, kw


def purpose_network(cfg: Config, runs: Path, data, *, progress: bool = False):
    """(score model, training images (N, C, H, W), name): the unconditional UNet trained for this test."""
    from statphys_diffusion.nets.run import cached_run, load_run, load_weights, run_name

    ds, kw = _purpose_run(cfg, data)
    name = run_name(**kw)
    committed = ROOT_WEIGHTS / f"{name}.fp16.pt"
    if committed.is_file():
        model = load_weights(committed)[0]
    else:
        model = load_run(cached_run(runs, dataset=ds, progress=progress, **kw))[0]
    return model, _images(ds), name


def train_purpose(cfg: Config, runs: Path, data, *, export: bool) -> dict:
    """Train (or resume, from its last checkpoint) the purpose network; export its float16 EMA weights to
    weights/ when finished. Refuses without the committed pre-registration in full mode."""
    from statphys_diffusion.nets.run import cached_run, export_weights, run_name

    ex.preregistration(NAME, require_committed=cfg.mode == "full")
    ds, kw = _purpose_run(cfg, data)
    name = run_name(**kw)
    timer = ex.Timer()
    run = cached_run(runs, dataset=ds, progress=True, **kw)
    info = {"run": str(run), "name": name, "seconds": timer.seconds}
    if export:
        info["weights"] = str(export_weights(run, ROOT_WEIGHTS / f"{name}.fp16.pt"))
    print(info)
    return info


def small50k_network(cfg: Config, data):
    """The committed class-conditional small UNet on all 50,000 images; its null-label (unconditional) prediction."""
    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import load_weights

    model = load_weights(ROOT_WEIGHTS / "small-7d5bc70ad476b6a6.fp16.pt")[0]
    ds = datasets.load_cifar10(data, "train", size=16, progress=False)
    return model, _images(ds), "small-7d5bc70ad476b6a6"


def tiny_network(n: int, data):
    import _networks as nw

    model, ds, name = nw.memorization_network(None, n, 8000, data=data)
    return model, _images(ds), name


ROOT_WEIGHTS = ex.ROOT / "weights"
# the job cache of full runs: small JSON files, committed as they finish so that a run resumes on
# another machine (the keys hash the job functions' source and the configuration)
JOBS = ex.ROOT / "validation" / "jobs" / NAME


def _images(ds) -> np.ndarray:
    """(N, C, H, W) float64 in [-1, 1] of an ImageDataset."""
    return ds.as_points(order="chw").reshape(ds.images.shape[0], ds.images.shape[3], *ds.images.shape[1:3])


def held_out_images(size: int, data, n: int) -> np.ndarray:
    from statphys_diffusion import datasets

    ds = datasets.load_cifar10(data, "test", n=n, size=size, seed=1, progress=False)
    return _images(ds)


# -- models ---------------------------------------------------------------------------------------------


def build_model(name: str, train: np.ndarray, schedule, cfg: Config, value=None):
    """One model of a training set (N, C, H, W); ``value``: its patch size / threshold, a number or t -> number."""
    n = train.shape[0]
    rows = train.reshape(n, -1)
    if name == "empirical":
        return sd.EmpiricalDistribution(rows, schedule=schedule)
    if name == "gaussian":
        return sd.GaussianMixture.fit(rows, schedule=schedule)
    if name == "LS":
        return sd.LocalEmpirical(train, patch_size=value or cfg.ls_sizes[0], schedule=schedule)
    if name == "ELS":
        sub = train if n <= cfg.els_subset else train[np.random.default_rng(cfg.seed).choice(n, cfg.els_subset, False)]
        return sd.EquivariantLocalEmpirical(sub, patch_size=value or cfg.ls_sizes[0], schedule=schedule)
    if name == "PSPC":
        return sd.PatchPosteriorAverage(train, patch_size=value or cfg.pspc_sizes[0], schedule=schedule)
    if name == "locality":
        return sd.DataDrivenLocalEmpirical(
            train, threshold=cfg.thresholds[0] if value is None else value, schedule=schedule
        )
    raise ValueError(f"unknown model {name!r}")


CALIBRATED = {
    "LS": ("patch_size", "ls_sizes"),
    "ELS": ("patch_size", "ls_sizes"),
    "PSPC": ("patch_size", "pspc_sizes"),
    "locality": ("threshold", "thresholds"),
}


def _nearest_level(table: dict, schedule):
    """t -> the calibrated value at the nearest calibration level in log-SNR."""
    levels, best = np.asarray(table["log_snr"]), list(table["best"])

    def value(t: float):
        return best[int(np.argmin(np.abs(levels - float(schedule.log_snr(t)))))]

    return value


class Composite:
    """At each time the model whose calibrated denoiser is closest to the network's (nearest calibration
    level in log-SNR): the per-noise-level composite of the pre-registration."""

    def __init__(self, models: dict, choice_log_snr, choice: list, schedule):
        self.models, self.schedule = models, schedule
        self._ls, self._choice = np.asarray(choice_log_snr), list(choice)

    @property
    def dim(self) -> int:
        return next(iter(self.models.values())).dim

    def pick(self, t: float) -> str:
        return self._choice[int(np.argmin(np.abs(self._ls - float(self.schedule.log_snr(t)))))]

    def denoise(self, x, t):
        return self.models[self.pick(t)].denoise(x, t)

    def score(self, x, t):
        return self.models[self.pick(t)].score(x, t)


def levels(cfg: Config, schedule) -> np.ndarray:
    """The calibration times: the log-SNR levels of the pre-registration, in the network's schedule."""
    return np.array([float(schedule.t_of_snr(np.exp(v))) for v in cfg.log_snr])


def denoiser_mse(network, model, images: np.ndarray, times, n: int, rng) -> tuple[list, list]:
    """Per-pixel MSE of ``model``'s denoiser to the network's on noised ``images``, per time (mean, s.e.)."""
    sch = network.schedule
    x0 = images[rng.choice(images.shape[0], min(n, images.shape[0]), replace=False)].reshape(-1, images[0].size)
    mean, se = [], []
    for t in times:
        a, s = float(sch.alpha(t)), float(sch.sigma(t))
        xt = a * x0 + s * rng.standard_normal(x0.shape)
        per = np.mean((np.asarray(model.denoise(xt, t)) - network.denoise(xt, t)) ** 2, axis=1)
        mean.append(float(per.mean()))
        se.append(float(per.std(ddof=1) / np.sqrt(per.size)))
    return mean, se


def initial_noise(cfg: Config, schedule, d: int) -> np.ndarray:
    """The pre-registered initial noises (seed ``cfg.seed``), the same for the network and every model."""
    t0 = float(schedule.default_t_start)
    scale = float(np.sqrt(schedule.alpha(t0) ** 2 + schedule.sigma2(t0)))
    return np.random.default_rng(cfg.seed).standard_normal((cfg.n_samples, d)) * scale


# -- the decision rule ----------------------------------------------------------------------------------


def _median_ci(diff_fn, r2: dict, rng, n_boot: int) -> tuple[float, float]:
    m = next(iter(r2.values())).size
    idx = rng.integers(0, m, size=(n_boot, m))
    vals = np.array([diff_fn({k: v[i] for k, v in r2.items()}) for i in idx])
    return float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))


def decision(r2: dict, *, n_boot: int = 200, seed: int = 0) -> tuple[str, str]:
    """The pre-registered rule on per-sample r^2 arrays (paired by sample) of every model.

    confirmed: the best local model (highest median r^2) beats both the Gaussian and the empirical model
    in median r^2 with a 95% bootstrap interval of the difference excluding 0, and its median r^2 >= 0.8;
    refuted: the Gaussian or the empirical model beats every local model with an interval excluding 0;
    otherwise partly.
    """
    rng = np.random.default_rng(seed)
    med = {k: float(np.median(v)) for k, v in r2.items()}
    best = max(LOCAL, key=med.__getitem__)
    beats = {}
    for ref in ("gaussian", "empirical"):
        lo, hi = _median_ci(lambda d, ref=ref: np.median(d[best]) - np.median(d[ref]), r2, rng, n_boot)
        beats[ref] = lo > 0
    if all(beats.values()) and med[best] >= 0.8:
        return "confirmed", f"{best} (median r2 {med[best]:.3f}) beats the Gaussian and the empirical model"
    for ref in ("gaussian", "empirical"):
        if all(
            _median_ci(lambda d, ref=ref, loc=loc: np.median(d[ref]) - np.median(d[loc]), r2, rng, n_boot)[0] > 0
            for loc in LOCAL
        ):
            return "refuted", f"the {ref} model (median r2 {med[ref]:.3f}) beats every local model"
    why = [f"{ref}: {'beaten' if b else 'not beaten'}" for ref, b in beats.items()]
    return "partly", f"best local {best} median r2 {med[best]:.3f} (>= 0.8: {med[best] >= 0.8}); " + ", ".join(why)


def median_differences(r2: dict, *, n_boot: int, seed: int = 0) -> dict:
    """Descriptive, beside the rule: each local model's median r^2 minus the Gaussian's and the empirical model's.

    Keys ``"<local> - <reference>"``; values the difference of medians and its 95% paired percentile-bootstrap
    interval (``n_boot`` resamples of the samples, the same resample for both models), the interval the
    rule's "beats ... with an interval excluding 0" reads.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for loc in LOCAL:
        for ref in ("gaussian", "empirical"):
            lo, hi = _median_ci(lambda d, a=loc, b=ref: np.median(d[a]) - np.median(d[b]), r2, rng, n_boot)
            est = float(np.median(r2[loc]) - np.median(r2[ref]))
            out[f"{loc} - {ref}"] = {"difference": est, "ci": [lo, hi]}
    return out


def _resample(r2: dict, rng) -> dict:
    m = next(iter(r2.values())).size
    i = rng.integers(0, m, m)
    return {k: v[i] for k, v in r2.items()}


# -- jobs: calibration per (network, model, level), samples per (network, model, batch), MSE per -------
# (network, model); then the composite. Each is a cached run_sweep job of minutes, so a killed run loses
# little, and the cache (JSON) can travel to another machine.


@functools.lru_cache(maxsize=2)
def load_network(key: str, cfg: Config, data, runs):
    """(network, training images (N, C, H, W), name), loaded once per process for a run of jobs."""
    if key == "purpose":
        return purpose_network(cfg, ex.ROOT / runs, data)
    if key == "small50k":
        return small50k_network(cfg, data)
    if key.startswith("tiny"):
        return tiny_network(int(key[4:]), data)
    if key.startswith("ref-"):  # the reference check's analytic stand-ins
        return reference_network(key, cfg, data)
    raise ValueError(f"unknown network {key!r}")


@functools.lru_cache(maxsize=2)
def _held_out(size: int, data, n: int) -> np.ndarray:
    return held_out_images(size, data, n)


def _config(job: dict) -> Config:
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["config"].items()})


def _setting(job: dict):
    """(cfg, network, training images, network name, held-out images) of a job."""
    cfg = _config(job)
    network, train, name = load_network(job["network"], cfg, job["data"], job["runs"])
    held = _held_out(cfg.size, job["data"], max(cfg.n_calibration, cfg.n_mse, 64))
    return cfg, network, train, name, held


def _model(job: dict, cfg: Config, network, train):
    """The job's model, calibrated by the job's ``table`` (patch models) or its ``choice`` (the composite)."""
    sch = network.schedule
    if job["model"] == "composite":
        parts = {m: build_model(m, train, sch, cfg, None if t is None else _nearest_level(t, sch))
                 for m, t in job["tables"].items() if m in job["choice"]}  # fmt: skip
        return Composite(parts, cfg.log_snr, job["choice"], sch)
    table = job.get("table")
    return build_model(job["model"], train, sch, cfg, None if table is None else _nearest_level(table, sch))


def calibration_job(job: dict) -> dict:
    """One patch model's MSE to the network's denoiser at one calibration level, for each size."""
    cfg, network, train, _, held = _setting(job)
    param, field = CALIBRATED[job["model"]]
    t = levels(cfg, network.schedule)[job["level"]]
    # the same noised held-out images for every model at this level (paired comparison)
    rng = np.random.default_rng([cfg.seed, job["level"]])
    cal = sd.calibrate_patch_size(
        network, build_model(job["model"], train, network.schedule, cfg), held.reshape(held.shape[0], -1), [t],
        getattr(cfg, field), parameter=param, n=cfg.n_calibration, rng=rng,
    )  # fmt: skip
    return {"values": np.asarray(cal.sizes).tolist(), "mse": cal.mse[0].tolist(),
            "mse_stderr": cal.mse_stderr[0].tolist(), "best": np.asarray(cal.best).tolist()[0]}  # fmt: skip


def _batch(cfg: Config, i: int) -> slice:
    per = -(-cfg.n_samples // cfg.n_batches)
    return slice(i * per, min(cfg.n_samples, (i + 1) * per))


def sample_job(job: dict) -> dict:
    """The network and the model from one batch of the pre-registered initial noises: per-sample r^2 (and, in
    the first batch, eight sample pairs for the figure, rounded to 1e-4)."""
    cfg, network, train, _, _ = _setting(job)
    model = _model(job, cfg, network, train)
    noise = initial_noise(cfg, network.schedule, train[0].size)[_batch(cfg, job["batch"])]
    agree = sd.sample_agreement(
        network, model, sd.DDIM(cfg.ddim_steps), noise, compare_denoisers=False, n_bootstrap=1, rng=0
    )
    out = {"r2": agree.r2}
    if job["batch"] == 0:
        out["samples"] = np.round(agree.model_samples[:8], 4)
        out["network_samples"] = np.round(agree.network_samples[:8], 4)
    return out


def mse_job(job: dict) -> dict:
    """Per-pixel MSE of the model's denoiser to the network's at the calibration levels, on noised held-out
    and training images (the same noised images for every model)."""
    cfg, network, train, _, held = _setting(job)
    model = _model(job, cfg, network, train)
    times = levels(cfg, network.schedule)
    mse_held = denoiser_mse(network, model, held, times, cfg.n_mse, np.random.default_rng([cfg.seed, 100]))
    mse_train = denoiser_mse(network, model, train, times, cfg.n_mse, np.random.default_rng([cfg.seed, 101]))
    return {"mse_held": mse_held[0], "mse_held_stderr": mse_held[1],
            "mse_train": mse_train[0], "mse_train_stderr": mse_train[1]}  # fmt: skip


def network_job(job: dict) -> dict:
    """The network's own checks: G1 (one deterministic path), G2 (regime map at the calibration levels), and
    how close its samples are to their nearest training image (halo of one image)."""
    cfg, network, train, name, held = _setting(job)
    sch = network.schedule
    noise = initial_noise(cfg, sch, train[0].size)
    sampler = sd.DDIM(cfg.ddim_steps)
    first = sampler.sample(network, x_init=noise).x
    again = sampler.sample(network, x_init=noise[: min(4, cfg.n_samples)]).x
    g1 = float(np.min(sd.per_sample_r2(first[: again.shape[0]], again)))
    times = levels(cfg, sch)
    rows = train.reshape(train.shape[0], -1)
    rm = sd.regime_map(
        network, rows, held.reshape(held.shape[0], -1), times,
        n_points=min(64, held.shape[0]), consistency=False, rng=cfg.seed,
    )  # fmt: skip
    nearest = sd.nearest_neighbours(first, rows, k=1).indices[:, 0]
    halo = sd.per_sample_r2(first, rows[nearest])
    return {
        "network": name,
        "n_train": int(train.shape[0]),
        "gaussian_rank": int(min(train.shape[0] - 1, train[0].size)),
        "G1_deterministic_min_r2": g1,
        "G2_regimes": rm.regime.tolist(),
        "nearest_training_image_r2": halo,
    }


def census_job(job: dict) -> dict:
    """Result 2's classification of the network's samples from the pre-registered noises (memorised, spurious,
    generalised; its committed pixel threshold, the samples clipped to the pixel range as Result 2 does), so
    the spurious ones can be described (pre-registration, "Descriptive"): a halo of one training image (r^2
    to it near 1) or a patch mosaic (r^2 to the ELS sample from the same noise near 1)."""
    cfg, network, train, _, _ = _setting(job)
    noise = initial_noise(cfg, network.schedule, train[0].size)
    x = np.clip(sd.DDIM(cfg.ddim_steps).sample(network, x_init=noise).x, -1, 1)
    rows = train.reshape(train.shape[0], -1)
    c = sd.classify_samples(x, rows, delta_m=job["delta"], delta_s=job["delta"])
    return {"labels": np.asarray(c.labels).tolist()}


def spurious_description(labels, nearest_r2, els_r2) -> dict:
    """Per category of Result 2's rule: count, and median r^2 of the network's sample against its nearest
    training image and against the ELS sample from the same noise; the share closer to that image."""
    labels, near, els = (np.asarray(v) for v in (labels, nearest_r2, els_r2))
    out = {}
    for k in ("memorized", "spurious", "generalized"):
        sel = labels == k
        n = int(sel.sum())
        out[k] = {
            "n": n,
            "median_r2_nearest_training_image": float(np.median(near[sel])) if n else None,
            "median_r2_ELS_sample": float(np.median(els[sel])) if n else None,
            "share_closer_to_the_training_image": float(np.mean(near[sel] > els[sel])) if n else None,
        }
    return out


# the order jobs run in: the cheap models first, ELS (the slowest) last
ORDER = ("empirical", "gaussian", "LS", "PSPC", "locality", "ELS")


def _table(cfg: Config, model: str, cells: list[dict]) -> dict:
    """A model's calibration table from its per-level jobs."""
    return {
        "log_snr": list(cfg.log_snr),
        "values": cells[0]["values"],
        "mse": [c["mse"] for c in cells],
        "mse_stderr": [c["mse_stderr"] for c in cells],
        "best": [c["best"] for c in cells],
    }


def _assemble(cfg: Config, samples: list[dict], mse: dict) -> dict:
    """One (network, model)'s row: r^2 over all batches with bootstrap intervals, samples, MSE."""
    r2 = np.concatenate([np.asarray(s["r2"]) for s in samples])
    iv = sd.r2_intervals(r2, n_bootstrap=cfg.n_bootstrap, rng=cfg.seed)
    return {
        "r2": r2,
        "median_r2": iv["median"],
        "median_r2_ci": [iv["median_low"], iv["median_high"]],
        "fraction_above_0.8": iv["fraction_above"],
        "fraction_ci": [iv["fraction_low"], iv["fraction_high"]],
        **mse,
        "samples": samples[0]["samples"],
        "network_samples": samples[0]["network_samples"],
    }


def measure_networks(keys: list, cfg: Config, data, runs, cache, progress: bool) -> list[dict]:
    """Every job of the networks ``keys`` (cached: a killed run resumes job by job), assembled per network."""
    base = {"config": dataclasses.asdict(cfg), "data": data, "runs": str(runs)}
    nets = [dict(base, network=k) for k in keys]
    checks = sd.run_sweep(network_job, nets, cache_dir=cache, progress=progress, desc=f"{NAME} networks")
    patch = [m for m in ORDER if m in CALIBRATED]
    cal_jobs = [dict(base, network=k, model=m, level=i) for m in patch for k in keys for i in range(len(cfg.log_snr))]
    cal = sd.run_sweep(calibration_job, cal_jobs, cache_dir=cache, progress=progress, desc=f"{NAME} calibration")
    tables = {(k, m): _table(cfg, m, [r for j, r in zip(cal_jobs, cal) if (j["network"], j["model"]) == (k, m)])
              for k in keys for m in patch}  # fmt: skip
    by: dict = {}
    for m in ORDER:  # one model at a time over every network: its samples, then its MSE
        jobs = [dict(base, network=k, model=m, table=tables.get((k, m))) for k in keys]
        smp = [dict(j, batch=b) for j in jobs for b in range(cfg.n_batches)]
        got = sd.run_sweep(sample_job, smp, cache_dir=cache, progress=progress, desc=f"{NAME} {m} samples")
        err = sd.run_sweep(mse_job, jobs, cache_dir=cache, progress=progress, desc=f"{NAME} {m} MSE")
        for j, e in zip(jobs, err):
            parts = [r for sj, r in zip(smp, got) if sj["network"] == j["network"]]
            by[j["network"], m] = dict(_assemble(cfg, parts, e), calibration=tables.get((j["network"], m)))
    comp_jobs = []
    for k in keys:
        # the composite: at each level, the model (of the six) whose calibrated denoiser is closest there
        mse = np.array([by[k, m]["mse_held"] for m in MODELS[:-1]])
        choice = [MODELS[int(i)] for i in np.argmin(mse, axis=0)]
        comp_jobs.append(dict(base, network=k, model="composite", choice=choice,
                              tables={m: tables.get((k, m)) for m in MODELS[:-1]}))  # fmt: skip
    smp = [dict(j, batch=b) for j in comp_jobs for b in range(cfg.n_batches)]
    got = sd.run_sweep(sample_job, smp, cache_dir=cache, progress=progress, desc=f"{NAME} composite samples")
    for j in comp_jobs:
        k, choice = j["network"], j["choice"]
        parts = [r for sj, r in zip(smp, got) if sj["network"] == k]
        # its denoiser at calibration level i is the chosen model's, on the same noised images: the same MSE
        mse = {f: [by[k, c][f][i] for i, c in enumerate(choice)]
               for f in ("mse_held", "mse_held_stderr", "mse_train", "mse_train_stderr")}  # fmt: skip
        by[k, "composite"] = dict(_assemble(cfg, parts, mse), calibration={"choice": choice})
    # the associative-memory row's samples, classified by Result 2's rule (its committed threshold)
    tiny = [k for k in keys if k.startswith("tiny")]
    census = {}
    if tiny:
        memo = ex.ROOT / "figures" / "network_memorization.json"
        delta = float(json.loads(memo.read_text())["thresholds"]["delta_pixels"])
        cjobs = [dict(base, network=k, delta=delta) for k in tiny]
        got = sd.run_sweep(census_job, cjobs, cache_dir=cache, progress=progress, desc=f"{NAME} census")
        census = {j["network"]: r["labels"] for j, r in zip(cjobs, got)}
    results = []
    for k, chk in zip(keys, checks):
        res = {"key": k, **{kk: vv for kk, vv in chk.items() if kk != "nearest_training_image_r2"}}
        halo = np.asarray(chk["nearest_training_image_r2"])
        res["nearest_training_image_median_r2"] = float(np.median(halo))
        res["nearest_training_image_fraction_above_0.8"] = float(np.mean(halo > 0.8))
        res["models"] = {m: {kk: vv for kk, vv in by[k, m].items() if kk not in ("r2", "samples", "network_samples",
                                                                                    "network", "model")}
                         for m in MODELS}  # fmt: skip
        r2 = {m: np.asarray(by[k, m]["r2"]) for m in MODELS}
        best = max(MODELS, key=lambda m: by[k, m]["median_r2"])
        ci = by[k, best]["median_r2_ci"]
        res["gates"] = {
            "G1_deterministic_min_r2": chk["G1_deterministic_min_r2"],
            "G1_passes": bool(chk["G1_deterministic_min_r2"] > 1 - 1e-6),
            "G2_regimes": chk["G2_regimes"],
            "G2_passes": "not converged" not in chk["G2_regimes"],
            "G3_best_model": best,
            "G3_median_ci_width": float(ci[1] - ci[0]),
            "G3_passes": bool(ci[1] - ci[0] <= 0.1),
        }
        if k in ("purpose", "small50k") or k.startswith("ref-"):
            g = res["gates"]
            if not (g["G1_passes"] and g["G2_passes"] and g["G3_passes"]):
                failed = [x for x in ("G1", "G2", "G3") if not g[f"{x}_passes"]]
                res["verdict"] = ex.Verdict("not testable", f"gates failed: {failed}", 1.0, 0).to_dict()
            else:
                res["verdict"] = ex.decide(
                    lambda r: decision(r), r2, _resample, n_resamples=200, rng=cfg.seed
                ).to_dict()
            res["median_differences"] = median_differences(r2, n_boot=cfg.n_bootstrap, seed=cfg.seed)
        if k in census:
            res["sample_categories"] = spurious_description(census[k], halo, by[k, "ELS"]["r2"])
        res["times"] = levels(cfg, sd.DiscreteSchedule.linear(1000)).tolist()
        res["log_snr"] = list(cfg.log_snr)
        res["_samples"] = {m: np.asarray(by[k, m]["samples"]) for m in MODELS}
        res["_samples"]["network"] = np.asarray(by[k, MODELS[0]]["network_samples"])
        res["_r2"] = r2
        results.append(res)
    return results


def _family(results: list[dict]) -> list[dict]:
    """The memorisation family's results (keys ``tiny<N>``), in increasing N."""
    return sorted((r for r in results if r["key"].startswith("tiny")), key=lambda r: r["n_train"])


def family_description(results: list[dict]) -> dict | None:
    """The memorisation family's descriptive items (pre-registration, "Descriptive"; no verdict): per N, the
    base model (composite aside) with the highest median r^2 and, per calibration level, the one whose
    denoiser is closest to the network's on held-out images; the N where no base model reaches median r^2
    0.5; and the network's median r^2 to its nearest training image (how much it copies)."""
    fam = _family(results)
    if not fam:
        return None
    base = MODELS[:-1]
    rows = []
    for r in fam:
        med = {m: r["models"][m]["median_r2"] for m in base}
        best = max(base, key=med.__getitem__)
        closest = [min(base, key=lambda m: r["models"][m]["mse_held"][i]) for i in range(len(r["log_snr"]))]
        rows.append({"n_train": r["n_train"], "best_model": best, "best_median_r2": med[best],
                     "composite_median_r2": r["models"]["composite"]["median_r2"],
                     "nearest_training_image_median_r2": r["nearest_training_image_median_r2"],
                     "closest_denoiser_per_level": closest})  # fmt: skip
    return {
        "log_snr": fam[0]["log_snr"],
        "per_n": rows,
        "n_where_no_model_reaches_0.5": [row["n_train"] for row in rows if row["best_median_r2"] < 0.5],
    }


# -- outputs --------------------------------------------------------------------------------------------


def _grid(plt, n: int, width: float, height: float, cols: int = 4):
    """One panel per network, at most ``cols`` a row; unused panels hidden."""
    c = min(cols, n)
    r = -(-n // c)
    fig, axes = plt.subplots(r, c, figsize=(width * c, height * r), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def figures(results: list[dict], out: Path, image_shape) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c, h, w = image_shape
    for res in results:
        if res["key"].startswith("tiny"):  # the family is shown as a whole (family_figure)
            continue
        rows = ["network", *MODELS]
        fig, axes = plt.subplots(len(rows), 8, figsize=(8 * 0.9, len(rows) * 0.95))
        for i, k in enumerate(rows):
            imgs = np.asarray(res["_samples"][k])
            for j in range(8):
                ax = axes[i, j]
                ax.axis("off")
                if j < imgs.shape[0]:
                    im = np.clip((imgs[j].reshape(c, h, w).transpose(1, 2, 0) + 1) / 2, 0, 1)
                    ax.imshow(im[..., 0] if c == 1 else im, cmap="gray" if c == 1 else None)
            label = k if k == "network" else f"{k} {res['models'][k]['median_r2']:.2f}"
            axes[i, 0].text(-0.1, 0.5, label, transform=axes[i, 0].transAxes, ha="right", va="center", fontsize=7)
        fig.suptitle(f"{res['network']}: samples from the same noise (median r^2 per model)", fontsize=8)
        fig.subplots_adjust(left=0.2, wspace=0.05, hspace=0.05)
        fig.savefig(out / f"{NAME}_{res['key']}.png", dpi=110)
        plt.close(fig)
    fig, axes = _grid(plt, len(results), 4.0, 3.0)
    for ax, res in zip(axes.flat, results):
        for k in MODELS:
            v = np.clip(np.asarray(res["_r2"][k]), -1, 1)
            ax.hist(v, bins=30, range=(-1, 1), histtype="step", label=k)
        ax.axvline(0.8, color="0.5", ls="--", lw=1)
        ax.set_title(f"{res['key']}, N = {res['n_train']}", fontsize=8)
        ax.set_xlabel("per-sample r^2 against the network")
    from statphys_diffusion._results import legend

    legend(axes[0][0], fontsize=6)
    fig.tight_layout()
    fig.savefig(out / f"{NAME}_r2.png", dpi=110)
    plt.close(fig)
    # each model's denoiser against the network's per noise level (held-out images, +-2 s.e.), with the
    # calibrated size written at each level: which model the network is closest to, and where
    fig, axes = _grid(plt, len(results), 4.6, 3.4)
    for ax, res in zip(axes.flat, results):
        ls = np.asarray(res["log_snr"])
        for j, k in enumerate(MODELS[:-1]):
            m = res["models"][k]
            y, e = np.asarray(m["mse_held"]), 2 * np.asarray(m["mse_held_stderr"])
            ax.errorbar(ls + 0.06 * (j - 2.5), y, yerr=e, marker="o", ms=3, capsize=2, lw=1, label=k)
            cal = m.get("calibration") or {}
            if "best" in cal:
                for xv, yv, b in zip(ls, y, cal["best"]):
                    ax.annotate(f"{b:g}", (xv + 0.06 * (j - 2.5), yv), fontsize=5, xytext=(2, 2),
                                textcoords="offset points")  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlabel("log-SNR (left: noisy)")
        ax.set_ylabel("per-pixel MSE to the network's denoiser")
        ax.set_title(f"{res['key']}, N = {res['n_train']}: held-out images (numbers: calibrated size)", fontsize=8)
    legend(axes[0][0], fontsize=6)
    fig.tight_layout()
    fig.savefig(out / f"{NAME}_mse.png", dpi=110)
    plt.close(fig)
    family_figure(results, out / f"{NAME}_family.png")


def family_figure(results: list[dict], path: Path) -> None:
    """The memorisation family: each model's median r^2 to the network (95% interval) against N, beside the
    network's r^2 to its nearest training image; and which model's denoiser is closest per N and level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fam = _family(results)
    if not fam:
        return
    n = np.array([r["n_train"] for r in fam])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.5, 3.8), gridspec_kw={"width_ratios": [1.3, 1]})
    for j, k in enumerate(MODELS):
        med = np.array([r["models"][k]["median_r2"] for r in fam])
        lo, hi = (np.array([r["models"][k]["median_r2_ci"][i] for r in fam]) for i in (0, 1))
        ax.errorbar(n * 1.03 ** (j - 3), med, yerr=[med - lo, hi - med], marker="o", ms=3, capsize=2, lw=1,
                    ls=":" if k == "composite" else "-", label=k)  # fmt: skip
    near = [r["nearest_training_image_median_r2"] for r in fam]
    ax.plot(n, near, "k--", lw=1.2, label="nearest training image")
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-1.02, 1.02)
    ax.set_xlabel("N (training images)")
    ax.set_ylabel("median per-sample r^2 against the network")
    ax.set_title("what predicts the tiny networks' samples (95% intervals)", fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    base = list(MODELS[:-1])
    desc = family_description(results)
    grid = np.array([[base.index(m) for m in row["closest_denoiser_per_level"]] for row in desc["per_n"]])
    cmap = plt.get_cmap("tab10", 10)
    bx.imshow(grid.T, cmap=cmap, vmin=-0.5, vmax=9.5, aspect="auto", origin="lower")
    bx.set_xticks(range(len(n)), [str(v) for v in n], fontsize=7)
    bx.set_yticks(range(len(desc["log_snr"])), [f"{v:g}" for v in desc["log_snr"]], fontsize=7)
    bx.set_xlabel("N")
    bx.set_ylabel("log-SNR (bottom: noisy)")
    bx.set_title("closest denoiser to the network's (held-out images)", fontsize=9)
    from matplotlib.patches import Patch

    bx.legend(handles=[Patch(color=cmap(i), label=m) for i, m in enumerate(base)], fontsize=6,
              loc="upper left", bbox_to_anchor=(1.01, 1))  # fmt: skip
    save_figure(fig, path)


def write(results: list[dict], out: Path, cfg: Config, prereg: str, seconds: float) -> dict:
    from statphys_diffusion._io import write_rows_csv

    rows, mse_rows = [], []
    for res in results:
        for k, m in res["models"].items():
            rows.append(
                {
                    "network": res["network"],
                    "n_train": res["n_train"],
                    "model": k,
                    "median_r2": m["median_r2"],
                    "median_r2_low": m["median_r2_ci"][0],
                    "median_r2_high": m["median_r2_ci"][1],
                    "fraction_above_0.8": m["fraction_above_0.8"],
                    "fraction_low": m["fraction_ci"][0],
                    "fraction_high": m["fraction_ci"][1],
                }
            )
            for i, (ls, t) in enumerate(zip(res["log_snr"], res["times"])):
                mse_rows.append(
                    {
                        "network": res["network"],
                        "model": k,
                        "log_snr": ls,
                        "t": t,
                        "mse_held": m["mse_held"][i],
                        "mse_held_stderr": m["mse_held_stderr"][i],
                        "mse_train": m["mse_train"][i],
                        "mse_train_stderr": m["mse_train_stderr"][i],
                    }
                )
    write_rows_csv(out / f"{NAME}.csv", rows)
    write_rows_csv(out / f"{NAME}_mse.csv", mse_rows)
    summary = {
        "criterion": decision.__doc__,
        "networks": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
        "family": family_description(results),
        "provenance": ex.provenance(cfg, prereg, seconds),
    }
    ex.write_json(out / f"{NAME}.json", summary)
    return summary


REFERENCE_N = 300


def reference_network(key: str, cfg: Config, data):
    """An analytic stand-in for a network (the reference check): ELS (k = 5) or the Gaussian of the first
    300 training images of the seed-0 permutation at the config's size, on the DDPM linear schedule."""
    from statphys_diffusion import datasets

    sch = sd.DiscreteSchedule.linear(1000)
    ds = datasets.load_cifar10(data, "train", n=REFERENCE_N, size=cfg.size, seed=0, nested=True, progress=False)
    train = _images(ds)
    if key == "ref-ELS":
        return sd.EquivariantLocalEmpirical(train, patch_size=5, schedule=sch), train, "ELS k=5 (stand-in)"
    if key == "ref-gaussian":
        return sd.GaussianMixture.fit(train.reshape(REFERENCE_N, -1), schedule=sch), train, "Gaussian (stand-in)"
    raise ValueError(f"unknown stand-in {key!r}")


def reference_check(cfg: Config, data, runs, out: Path, progress: bool) -> dict:
    """The pipeline with analytic "networks" (pre-registration, "Reference check"): ELS (k = 5) and the
    Gaussian of a 300-image training set stand in for the network; the rule must confirm the first and
    refute the second. 100 samples, 10 DDIM steps, 32 calibration images (a check of the rule)."""
    small = dataclasses.replace(cfg, n_samples=100, ddim_steps=10, els_subset=REFERENCE_N, n_calibration=32, n_mse=32)
    cache = ex.ROOT / runs / f"{NAME}-ref"
    results = measure_networks(["ref-ELS", "ref-gaussian"], small, data, runs, cache, progress)
    report = {
        r["network"]: {
            "verdict": r["verdict"],
            "gates": r["gates"],
            "median_r2": {k: v["median_r2"] for k, v in r["models"].items()},
        }
        for r in results
    }
    for k, v in report.items():
        print(k, v["verdict"], {m: round(x, 3) for m, x in v["median_r2"].items()})
    ex.write_json(out, {"reference_check": report, "config": dataclasses.asdict(small)})
    return report


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument(
        "--network",
        default=["all"],
        nargs="+",
        choices=["all", "purpose", "small50k", "tiny"],
        help="the networks measured and written together (outputs hold exactly these)",
    )
    p.add_argument(
        "--jobs-only",
        action="store_true",
        help="fill the job cache and write no output (the outputs of other networks stay as they are)",
    )
    p.add_argument("--out", default=str(ex.ROOT / "figures"))
    p.add_argument("--runs", default="runs", help="training runs (relative to the repository root)")
    p.add_argument("--cache", default=None, help="job cache (default: validation/jobs/generalisation; none in --quick)")
    p.add_argument("--data", default=None)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--reference-check", action="store_true", help="analytic stand-ins for the network (see docstring)")
    p.add_argument(
        "--train-only", action="store_true", help="train (or resume) the purpose network, export its weights"
    )
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.train_only:
        return train_purpose(cfg, ex.ROOT / args.runs, args.data, export=not args.quick)
    if args.reference_check:
        out_ref = ex.PREREGISTRATIONS / f"{NAME}_reference_check.json"
        return reference_check(cfg, args.data, args.runs, out_ref, args.progress)
    _, prereg = ex.preregistration(NAME, require_committed=not args.quick)
    timer = ex.Timer()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = []
    chosen = set(args.network)
    if chosen & {"all", "purpose"}:
        keys.append("purpose")
    if not args.quick and chosen & {"all", "small50k"}:
        keys.append("small50k")
    if not args.quick and chosen & {"all", "tiny"}:
        keys += [f"tiny{n}" for n in cfg.tiny_ns]
    cache = ex.ROOT / args.cache if args.cache else (None if args.quick else JOBS)
    results = measure_networks(keys, cfg, args.data, args.runs, cache, args.progress)
    if args.jobs_only:
        print(f"jobs of {keys} done (cache {cache}); no output written")
        return {}
    figures(results, out, (3, cfg.size, cfg.size))
    summary = write(results, out, dataclasses.replace(cfg), prereg, timer.seconds)
    for r in summary["networks"]:
        print(r["network"], {k: round(v["median_r2"], 3) for k, v in r["models"].items()}, r.get("verdict"))
    return summary


if __name__ == "__main__":
    main()
