"""Training runs on image data sets and sampling from them (behind ``statphys-diffusion train`` / ``sample``).

A run directory holds ``run.json`` (everything needed to rebuild the network and
its schedule: configuration, resolution, channels, classes, schedule name,
training hyper-parameters) and ``checkpoint.pt`` (atomic, resumable: running
the same ``train`` command again continues where a killed run stopped).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import _checks, datasets
from .._io import DirectoryLock, atomic_write_text
from ..report import SCHEDULES
from .adapter import TorchScoreModel
from .models import build
from .train import TrainConfig, _atomic_save, load_checkpoint, train

__all__ = [
    "train_images",
    "cached_run",
    "load_run",
    "load_network",
    "sample_run",
    "export_weights",
    "load_weights",
]


def train_images(
    out,
    *,
    data_path=None,
    size: int = 16,
    n: int | None = None,
    classes=None,
    grayscale: bool = False,
    config: str = "tiny",
    schedule: str = "ddpm-linear",
    conditional: bool = False,
    train_config: TrainConfig | None = None,
    progress: bool = True,
    dataset: datasets.ImageDataset | None = None,
    device=None,
    nested: bool = False,
    init_weights=None,
) -> Path:
    """Train a UNet (``config``) on CIFAR-10 (or ``dataset``) images in [-1, 1]; returns the run directory.

    ``nested`` picks the ``n`` images as the first n of one permutation (``load_cifar10``'s
    ``nested``): runs of increasing n then train on nested sets.

    ``init_weights`` (a weights file written by :func:`export_weights`) starts the network and
    its EMA from those weights instead of a fresh initialisation, with a fresh optimiser: a
    warm restart that continues a finished run whose full checkpoint is gone. The file must
    describe the same network (configuration, channels, resolution, classes, schedule); its
    name and SHA-256 are part of the run's identity (:func:`run_key`), and ``run.json`` records
    them. Use another ``train_config.seed`` than the first run's, or the continuation replays
    the first run's batches and noise draws in the same order.

    ``device`` (e.g. ``"cuda"``) is where the network trains; it is not part of the run's identity.
    """
    from .models import CONFIGS

    # everything is validated before anything is written
    _checks.check_choice(schedule, sorted(SCHEDULES), "schedule")
    _checks.check_choice(config, sorted(CONFIGS), "config")
    tc = train_config or TrainConfig()
    if not isinstance(tc, TrainConfig):
        raise ValueError(f"train_config must be a TrainConfig, got {type(tc).__name__}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the run directory {str(out)!r}: {err}") from None
    with DirectoryLock(out, "checkpoint.pt.lock"):
        return _train_images_locked(
            out,
            data_path,
            size,
            n,
            classes,
            grayscale,
            config,
            schedule,
            conditional,
            tc,
            progress,
            dataset,
            device,
            nested,
            init_weights,
        )


def _weights_identity(path) -> str:
    """``<file name>:<first 16 hex digits of its SHA-256>`` (a weights file's identity in a run key)."""
    import hashlib

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"init_weights {str(path)!r} is not a file")
    return f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"


def _train_images_locked(
    out,
    data_path,
    size,
    n,
    classes,
    grayscale,
    config,
    schedule,
    conditional,
    tc,
    progress,
    dataset,
    device,
    nested,
    init_weights,
) -> Path:
    if dataset is None:
        dataset = datasets.load_cifar10(
            data_path,
            "train",
            n=n,
            classes=classes,
            size=size,
            grayscale=grayscale,
            seed=tc.seed,
            nested=nested,
            progress=progress,
        )
    x = np.ascontiguousarray(datasets.network_layout(dataset.images))
    meta = {
        "config": config,
        "in_channels": int(x.shape[1]),
        "size": int(x.shape[2]),
        "schedule": schedule,
        "conditional": bool(conditional),
        "class_names": list(dataset.class_names),
        "n_train": int(x.shape[0]),
        "source": dataset.source,
        "train": asdict(tc),
    }
    if init_weights is not None:  # only when set, so run.json of earlier runs is unchanged
        meta["init_weights"] = _weights_identity(init_weights)
    run_json = out / "run.json"
    if run_json.is_file():
        old = json.loads(run_json.read_text())
        if isinstance(old.get("train"), dict):  # runs written before newer TrainConfig fields existed
            old["train"] = asdict(TrainConfig.from_dict(old["train"]))
        if old != meta:
            raise ValueError(f"{run_json} describes another run; use a new --out directory")
    atomic_write_text(run_json, json.dumps(meta, indent=2))
    torch.manual_seed(tc.seed)
    n_cls = len(dataset.class_names) if conditional else 0
    net = build(config, in_channels=x.shape[1], n_classes=n_cls)
    if init_weights is not None:
        _load_initial_weights(net, init_weights, meta)
    sch = SCHEDULES[schedule]()
    train(
        net,
        x,
        sch,
        tc,
        labels=dataset.labels if conditional else None,
        n_classes=n_cls,
        checkpoint=out / "checkpoint.pt",
        progress=progress,
        device=device,
    )
    return out


def _load_initial_weights(net, path, meta: dict) -> None:
    """Load a weights file into ``net`` after checking that it describes the same network as ``meta``."""
    state, old = _read_weights(path)
    for key in ("config", "in_channels", "size", "schedule", "conditional", "class_names"):
        if old.get(key) != meta[key]:
            raise ValueError(
                f"init_weights {str(path)!r} describes another network: "
                f"{key} = {old.get(key)!r}, this run has {meta[key]!r}"
            )
    net.load_state_dict(state)


def run_key(**kwargs) -> dict:
    """The configuration that identifies a :func:`train_images` run (for :func:`cached_run`)."""
    allowed = {
        "data_path",
        "size",
        "n",
        "classes",
        "grayscale",
        "config",
        "schedule",
        "conditional",
        "train_config",
        "nested",
        "init_weights",
    }
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(f"unknown run arguments {sorted(unknown)}; allowed: {sorted(allowed)}")
    key: dict[str, Any] = {
        "size": 16,
        "n": None,
        "classes": None,
        "grayscale": False,
        "config": "tiny",
        "schedule": "ddpm-linear",
        "conditional": False,
    }
    key.update({k: v for k, v in kwargs.items() if k not in ("data_path", "train_config", "nested", "init_weights")})
    if kwargs.get("nested"):  # only when set, so the keys (and hashes) of earlier runs are unchanged
        key["nested"] = True
    if kwargs.get("init_weights") is not None:  # likewise; the file by name and content
        key["init_weights"] = _weights_identity(kwargs["init_weights"])
    if key["classes"] is not None:
        key["classes"] = list(key["classes"])
    key["train"] = (kwargs.get("train_config") or TrainConfig()).key()
    # the data set by file name (the same zip anywhere gives the same run)
    key["data"] = Path(kwargs["data_path"]).name if kwargs.get("data_path") is not None else "default"
    return key


def run_name(**kwargs) -> str:
    """``<config>-<hash>``: the directory (and weights-file) name of a run, from :func:`run_key`."""
    from ..sweep import config_hash

    key = run_key(**kwargs)
    return f"{key['config']}-{config_hash(key)}"


def cached_run(
    root, *, progress: bool = True, dataset: datasets.ImageDataset | None = None, device=None, **kwargs
) -> Path:
    """Train, resume or reuse the :func:`train_images` run keyed by its configuration's hash.

    The run lives in ``root/<config>-<hash>`` with ``hash = sweep.config_hash(run_key(**kwargs))``;
    a finished run is returned as it is, a killed one resumes from its checkpoint.
    ``dataset`` (an in-memory data set) is not part of the key: pass a ``data_path``-free
    configuration that names it uniquely (e.g. through ``n`` and ``classes``) or a fresh ``root``.
    """
    out = Path(root) / run_name(**kwargs)
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file() and (out / "run.json").is_file():
        state = load_checkpoint(ckpt)
        if state["step"] >= run_key(**kwargs)["train"]["steps"]:
            return out
    return train_images(out, progress=progress, dataset=dataset, device=device, **kwargs)


def load_run(out, *, ema: bool = True, device=None) -> tuple[TorchScoreModel, dict]:
    """The trained network of a run directory as a score model (on ``device``), and its run.json."""
    out = Path(out)
    if not (out / "run.json").is_file() or not (out / "checkpoint.pt").is_file():
        raise ValueError(f"{str(out)!r} is not a finished or resumable run (run.json and checkpoint.pt)")
    meta = json.loads((out / "run.json").read_text())
    state = load_checkpoint(out / "checkpoint.pt")
    return _model_from(meta, state["ema" if ema else "net"], device)


def export_weights(run, path, *, ema: bool = True) -> Path:
    """Write a run's (EMA) weights as a float16 state dict with its run.json, for committing.

    The file holds tensors and plain containers only (``{"state": ..., "meta": run.json,
    "dtype": "float16"}``, loadable with ``weights_only=True``); a 1.4M-parameter ``small`` UNet
    takes 2.9 MB. :func:`load_weights` rebuilds the score model from it; its outputs differ from
    the float32 run's by the float16 rounding of the weights (relative 5e-4 per weight).
    """
    run = Path(run)
    if not (run / "run.json").is_file() or not (run / "checkpoint.pt").is_file():
        raise ValueError(f"{str(run)!r} is not a run directory (run.json and checkpoint.pt)")
    meta = json.loads((run / "run.json").read_text())
    state = load_checkpoint(run / "checkpoint.pt")
    if state["step"] < meta["train"]["steps"]:
        raise ValueError(f"run {str(run)!r} has not finished ({state['step']} of {meta['train']['steps']} steps)")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["ema" if ema else "net"].items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save({"state": half, "meta": meta, "dtype": "float16", "ema": bool(ema)}, path)
    return path


def load_weights(path, *, device=None) -> tuple[TorchScoreModel, dict]:
    """The score model of a weights file written by :func:`export_weights`, and its run.json."""
    state, meta = _read_weights(path)
    return _model_from(meta, state, device)


def _read_weights(path) -> tuple[dict, dict]:
    """(float32 state dict, run.json) of a weights file written by :func:`export_weights`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist")
    blob = torch.load(path, weights_only=True, map_location="cpu")
    return {k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()}, blob["meta"]


def load_network(source, *, device=None) -> tuple[TorchScoreModel, dict]:
    """The score model and its description: a run directory, a weights file or a saved diffusers pipeline.

    A file is read by :func:`load_weights` (the committed float16 weights) and a run directory by
    :func:`load_run` (both return run.json); a diffusers pipeline directory (``model_index.json``) by
    :func:`~statphys_diffusion.nets.load_pipeline`, with ``{"kind": "diffusers", "unet": ...,
    "scheduler": ...}`` (the two configs) as its description. Anything else is refused by name.
    """
    from .pipelines import is_pipeline_dir, load_pipeline

    path = Path(source)
    if path.is_file():
        return load_weights(path, device=device)
    if is_pipeline_dir(path):
        model = load_pipeline(path, device=device)
        unet = model.net.unet
        meta = {"kind": "diffusers", "unet": dict(unet.config), "source": str(path)}
        return model, meta
    if path.is_dir():
        if not (path / "run.json").is_file():
            raise ValueError(
                f"source {str(path)!r} is neither a run directory (run.json) nor a saved diffusers pipeline "
                "(model_index.json)"
            )
        return load_run(path, device=device)
    raise ValueError(
        f"source {str(path)!r} is neither a run directory nor a weights file nor a saved diffusers pipeline "
        "(it does not exist)"
    )


def _model_from(meta: dict, state: dict, device) -> tuple[TorchScoreModel, dict]:
    n_cls = len(meta["class_names"]) if meta["conditional"] else 0
    net = build(meta["config"], in_channels=meta["in_channels"], n_classes=n_cls)
    net.load_state_dict(state)
    net.eval()
    tc = TrainConfig.from_dict(meta["train"])
    return TorchScoreModel(
        net,
        SCHEDULES[meta["schedule"]](),
        image_shape=(meta["in_channels"], meta["size"], meta["size"]),
        classes=np.arange(n_cls) if n_cls else None,
        prediction=tc.prediction,
        sigma_data=tc.sigma_data,
        device=device,
    ), meta


def sample_run(
    out,
    n: int = 64,
    *,
    steps: int = 100,
    sampler: str = "ddpm",
    y=None,
    seed: int = 0,
    progress: bool = True,
    device=None,
) -> np.ndarray:
    """Samples (n, H, W, C) uint8 from a run with the package's samplers (DDPM ancestral or DDIM).

    ``out`` is a run directory (:func:`load_run`, EMA weights) or a weights file written by
    :func:`export_weights` (:func:`load_weights`).
    """
    from ..samplers import DDIM, DDPMAncestral

    model, meta = load_network(out, device=device)
    _checks.check_choice(sampler, ("ddpm", "ddim"), "sampler")
    cls = DDPMAncestral if sampler == "ddpm" else DDIM
    if y is not None:
        if not meta["conditional"]:
            raise ValueError("this run is unconditional: y is not available")
        names = meta["class_names"]
        code = names.index(y) if isinstance(y, str) and y in names else y
        if code not in range(len(names)):
            raise ValueError(f"y must be a class name or index of {names}, got {y!r}")

        class _Cond:
            schedule, dim = model.schedule, model.dim

            def score(self, x, t):
                return model.score(x, t, y=code)

        target: object = _Cond()
    else:
        target = model
    # down to t_min: the last DDPM/DDIM step returns the x0 prediction, the network is never asked at t = 0
    res = cls(steps, progress=progress).sample(target, n=n, rng=np.random.default_rng(seed))
    img = res.x.reshape(n, meta["in_channels"], meta["size"], meta["size"]).transpose(0, 2, 3, 1)
    return np.clip(np.rint((img + 1.0) * 127.5), 0, 255).astype(np.uint8)
