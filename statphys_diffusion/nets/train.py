r"""Training a denoising network, resumable.

Loss: E_{x_0, t, eps} |F(in(x_t), tau(t)[, y]) - target|^2 with x_t = alpha_t x_0 + sigma_t eps,
where ``TrainConfig.prediction`` chooses what F predicts and so the target and the
network input (:mod:`statphys_diffusion.nets.parametrization`): eps (Ho et al.
2020, the default), x_0, v (Salimans & Ho 2022) or the EDM preconditioned output
(Karras et al. 2022). ``TrainConfig.noise`` chooses the distribution of t:

- ``uniform`` (default): uniform over the DDPM indices of a :class:`DiscreteSchedule`
  (tau = index) or uniform in [t_eps, T] on a continuous schedule (tau = t);
- ``lognormal``: log(sigma_t / alpha_t) ~ N(p_mean, p_std^2), EDM's training distribution
  (Karras et al. 2022, Table 1: p_mean = -1.2, p_std = 1.2);
- ``logsnr``: log snr_t uniform over the schedule's range (Kingma et al. 2021 write the
  losses of every weighting as integrals over log-SNR; uniform sampling gives each
  e-fold of SNR the same number of draws).

The two continuous ones are mapped to t by equal snr and clipped to the schedule's
training range ([1, K] on a DiscreteSchedule, whose fractional t feed the network as
fractional indices t - 1; [t_eps, T] otherwise). Class-conditional
networks see the null class with probability ``label_dropout`` so that one
network predicts both (Ho & Salimans 2022).

Reproducible and resumable: every random draw (batch indices, times, noise,
label dropout) comes from one ``torch.Generator`` whose state is saved in the
checkpoint with the network, the EMA copy, the optimiser and the loss history.
Checkpoints are written to a temporary file and renamed (atomic), every
``checkpoint_every`` steps and at the end; :func:`train` resumes from the file
when it exists, and a run killed and resumed ends with the same weights as an
uninterrupted one (bit for bit on the CPU; seed torch before building the network
so that the initial weights agree too).
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .. import _checks, _progress
from .._io import DirectoryLock, temporary_name
from ..schedules import DiscreteSchedule, Schedule
from . import parametrization as _param

__all__ = ["TrainConfig", "TrainResult", "train", "NOISE_DISTRIBUTIONS"]

NOISE_DISTRIBUTIONS = ("uniform", "lognormal", "logsnr")
# fields added after the first release: left out of cache keys while at their defaults,
# so that runs cached before they existed keep their keys
_ADDED = ("prediction", "noise", "p_mean", "p_std", "sigma_data")


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train` (all saved in the checkpoint), validated on creation.

    Attributes
    ----------
    steps, batch_size, checkpoint_every : positive int
    lr : float > 0
    ema_decay : float in [0, 1)
    grad_clip : float >= 0 (0: no clipping of the gradient norm)
    label_dropout : float in [0, 1], probability of the null class (conditional training)
    t_eps : float > 0, the smallest training time on a continuous schedule
    seed : int >= 0
    prediction : {"eps", "x0", "v", "edm"}, what the network predicts (module docstring)
    noise : {"uniform", "lognormal", "logsnr"}, the distribution of training noise levels
    p_mean, p_std : float, the log-normal's parameters for log(sigma / alpha) (EDM: -1.2, 1.2)
    sigma_data : float > 0, EDM's data standard deviation
    """

    steps: int = 1000
    batch_size: int = 128
    lr: float = 2e-3
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    label_dropout: float = 0.1
    t_eps: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 100
    prediction: str = "eps"
    noise: str = "uniform"
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_data: float = 0.5

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            _checks.check_positive_int(getattr(self, name), name)
        _checks.check_real(self.lr, "lr", lo=0, lo_open=True)
        _checks.check_real(self.ema_decay, "ema_decay", lo=0, hi=1, hi_open=True)
        _checks.check_real(self.grad_clip, "grad_clip", lo=0)
        _checks.check_real(self.label_dropout, "label_dropout", lo=0, hi=1)
        _checks.check_real(self.t_eps, "t_eps", lo=0, lo_open=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        _checks.check_choice(self.prediction, _param.PREDICTIONS, "prediction")
        _checks.check_choice(self.noise, NOISE_DISTRIBUTIONS, "noise")
        _checks.check_real(self.p_mean, "p_mean")
        _checks.check_real(self.p_std, "p_std", lo=0, lo_open=True)
        _checks.check_real(self.sigma_data, "sigma_data", lo=0, lo_open=True)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A configuration from a saved dict; fields it lacks (older runs) take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**d)

    def key(self) -> dict:
        """The fields that identify a run: every field, except later additions still at their defaults."""
        default = TrainConfig()
        return {k: v for k, v in asdict(self).items() if k not in _ADDED or v != getattr(default, k)}


@dataclass
class TrainResult:
    net: torch.nn.Module
    ema: torch.nn.Module
    losses: list = field(default_factory=list)
    step: int = 0


def _atomic_save(obj, path: Path) -> None:
    tmp = temporary_name(path)  # per process: two writers never share a temporary file
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """A training checkpoint (tensors and plain containers only: ``weights_only=True``).

    A file that cannot be read as one (truncated, random bytes, empty) raises
    ``ValueError("corrupt file ...")``: delete it to restart the run from scratch.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, weights_only=True, map_location=map_location)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, UnicodeDecodeError, ...
        raise ValueError(f"corrupt file {str(path)!r}: {type(err).__name__}: {err}"[:400]) from None
    if not isinstance(state, dict):
        raise ValueError(f"corrupt file {str(path)!r}: not a checkpoint (a {type(state).__name__})")
    return state


def _time_range(schedule: Schedule, t_eps: float) -> tuple[float, float]:
    """The training range of t: [1, K] on a DiscreteSchedule, [t_eps, T] otherwise."""
    if isinstance(schedule, DiscreteSchedule):
        return 1.0, float(schedule.num_steps)
    t_max = schedule.t_max if np.isfinite(schedule.t_max) else schedule.default_t_start
    return float(t_eps), float(t_max)


def _draw_times(
    schedule: Schedule,
    n: int,
    gen: torch.Generator,
    t_eps: float,
    noise: str = "uniform",
    p_mean: float = -1.2,
    p_std: float = 1.2,
):
    """(tau for the network, alpha, sigma) for n training times drawn from ``noise`` (module docstring)."""
    lo, hi = _time_range(schedule, t_eps)
    discrete = schedule if isinstance(schedule, DiscreteSchedule) else None
    if noise == "uniform" and discrete is not None:
        k = torch.randint(0, discrete.num_steps, (n,), generator=gen)
        t = k.double().numpy() + 1.0
    elif noise == "uniform":
        u = torch.rand(n, generator=gen, dtype=torch.float64).numpy()
        t = lo + (hi - lo) * u
    else:
        if noise == "lognormal":
            z = torch.randn(n, generator=gen, dtype=torch.float64).numpy()
            log_snr = -2.0 * (p_mean + p_std * z)  # snr = 1 / (sigma / alpha)^2
        else:
            u = torch.rand(n, generator=gen, dtype=torch.float64).numpy()
            l_hi, l_lo = float(schedule.log_snr(lo)), float(schedule.log_snr(hi))
            log_snr = l_lo + (l_hi - l_lo) * u
        # clip in log-SNR to the training range [lo, hi] (t_of_snr refuses SNRs no time reaches: a log-normal
        # draw 5 standard deviations out, about 1 in 10^7, once stopped a run)
        log_snr = np.clip(log_snr, float(schedule.log_snr(hi)), float(schedule.log_snr(lo)))
        t = np.clip(np.asarray(schedule.t_of_snr(np.exp(log_snr)), dtype=np.float64).reshape(n), lo, hi)
    tau = torch.as_tensor(t - 1.0 if discrete is not None else t, dtype=torch.float32)
    a = torch.as_tensor(np.asarray(schedule.alpha(t), dtype=np.float64), dtype=torch.float32)
    s = torch.as_tensor(np.asarray(schedule.sigma(t), dtype=np.float64), dtype=torch.float32)
    return tau, a, s


def train(
    net: torch.nn.Module,
    data,
    schedule: Schedule,
    config: TrainConfig | None = None,
    *,
    labels=None,
    n_classes: int = 0,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    callback=None,
    device=None,
) -> TrainResult:
    """Train ``net`` on ``data`` (N, ...) for ``config.steps`` steps (resuming from ``checkpoint``).

    Parameters
    ----------
    net : torch.nn.Module taking (x, tau[, y])
    data : array (N, ...) float, the clean samples in the shape the network expects
    schedule : Schedule
    config : TrainConfig
    labels : (N,) int array of class indices 0..n_classes-1, optional (class-conditional training)
    n_classes : int
    checkpoint : path, optional
        Resumed from when it exists. While training, ``<checkpoint>.lock`` holds this process's
        pid: a second trainer on the same checkpoint is refused with a ValueError (a lock left by
        a killed process is taken over).
    progress : bool
        tqdm bar with the running loss.
    callback : callable(step, net, ema), optional
        Called after every step (evaluation hooks in tests and scripts).
    device : str or torch.device, optional
        Move the network there first; batches go to the network's device. Every random draw
        stays on the CPU generator, so a run is reproducible whatever the device (bit for bit
        on the CPU).
    """
    args = (net, data, schedule, config, labels, n_classes, checkpoint, progress, callback, device)
    if checkpoint is None:
        return _train(*args)
    path = Path(checkpoint)
    with DirectoryLock(path.parent, path.name + ".lock"):
        return _train(*args)


def _train(net, data, schedule, config, labels, n_classes, checkpoint, progress, callback, device) -> TrainResult:
    """The body of :func:`train` (which holds the checkpoint's lock around it), arguments as there."""
    cfg = config or TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(cfg).__name__}")
    if device is not None:
        net = net.to(device)
    p0 = next(iter(net.parameters()), None)
    dev = p0.device if p0 is not None else torch.device("cpu")
    x_all = torch.as_tensor(np.asarray(_checks.as_float_array(data, "data"), dtype=np.float32))
    if x_all.ndim < 2 or x_all.shape[0] < 1:
        raise ValueError(f"data must have shape (N, ...) with N >= 1, got {tuple(x_all.shape)}")
    y_all = None
    if labels is not None:
        y_np = np.asarray(labels)
        if y_np.shape != (x_all.shape[0],) or n_classes < 1:
            raise ValueError("labels must have shape (N,) and n_classes must be >= 1 for conditional training")
        if y_np.min() < 0 or y_np.max() >= n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes - 1}]")
        y_all = torch.as_tensor(y_np, dtype=torch.long)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ema = copy.deepcopy(net)
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    losses: list = []
    step = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        state = load_checkpoint(path, map_location=dev)
        if TrainConfig.from_dict(state["config"]) != cfg:
            raise ValueError(f"checkpoint {path} was written with another configuration: {state['config']}")
        net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"].cpu())
        losses, step = state["losses"], state["step"]

    def save():
        if path is not None:
            _atomic_save(
                {
                    "net": net.state_dict(),
                    "ema": ema.state_dict(),
                    "opt": opt.state_dict(),
                    "gen": gen.get_state(),
                    "losses": losses,
                    "step": step,
                    "config": asdict(cfg),
                },
                path,
            )

    bar = _progress.bar(progress, "train", cfg.steps, step)
    net.train()
    while step < cfg.steps:
        idx = torch.randint(0, x_all.shape[0], (cfg.batch_size,), generator=gen)
        x0 = x_all[idx]
        tau, a, s = _draw_times(schedule, cfg.batch_size, gen, cfg.t_eps, cfg.noise, cfg.p_mean, cfg.p_std)
        eps = torch.randn(x0.shape, generator=gen)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        x0, eps, tau = x0.to(dev), eps.to(dev), tau.to(dev)
        a, s = a.reshape(shape).to(dev), s.reshape(shape).to(dev)
        xt = a * x0 + s * eps
        inp = _param.network_input(xt, a, s, cfg.prediction, cfg.sigma_data)
        if y_all is not None:
            y = y_all[idx].clone()
            drop = torch.rand(cfg.batch_size, generator=gen) < cfg.label_dropout
            y[drop] = n_classes
            pred = net(inp, tau, y.to(dev))
        else:
            pred = net(inp, tau)
        target = _param.training_target(x0, eps, a, s, cfg.prediction, cfg.sigma_data)
        loss = ((pred - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.mul_(cfg.ema_decay).add_(p.detach(), alpha=1 - cfg.ema_decay)
        step += 1
        losses.append(loss.item())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if callback is not None:
            callback(step, net, ema)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save()
    if bar is not None:
        bar.close()
    net.eval()
    ema.eval()
    return TrainResult(net=net, ema=ema, losses=losses, step=step)
