r"""Training a noise-prediction network with the epsilon objective, resumable.

Loss (Ho et al. 2020): E_{x_0, t, eps} |eps - eps_theta(alpha_t x_0 + sigma_t eps, tau(t)[, y])|^2,
with t uniform over the DDPM indices of a :class:`DiscreteSchedule` (tau = index)
or uniform in [t_eps, T] on a continuous schedule (tau = t). Class-conditional
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import _checks
from ..schedules import DiscreteSchedule, Schedule

__all__ = ["TrainConfig", "TrainResult", "train"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train` (all saved in the checkpoint)."""

    steps: int = 1000
    batch_size: int = 128
    lr: float = 2e-3
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    label_dropout: float = 0.1
    t_eps: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 100


@dataclass
class TrainResult:
    net: torch.nn.Module
    ema: torch.nn.Module
    losses: list = field(default_factory=list)
    step: int = 0


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _draw_times(schedule: Schedule, n: int, gen: torch.Generator, t_eps: float):
    """(tau for the network, alpha, sigma) for n uniform training times."""
    if isinstance(schedule, DiscreteSchedule):
        k = torch.randint(0, schedule.num_steps, (n,), generator=gen)
        t = k.double().numpy() + 1.0
        tau = k.float()
    else:
        t_max = schedule.t_max if np.isfinite(schedule.t_max) else schedule.default_t_start
        u = torch.rand(n, generator=gen, dtype=torch.float64).numpy()
        t = t_eps + (t_max - t_eps) * u
        tau = torch.as_tensor(t, dtype=torch.float32)
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
    progress : bool
        tqdm bar with the running loss.
    callback : callable(step, net, ema), optional
        Called after every step (evaluation hooks in tests and scripts).
    """
    cfg = config or TrainConfig()
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
    _checks.check_positive_int(cfg.steps, "steps")
    _checks.check_positive_int(cfg.batch_size, "batch_size")
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
        state = torch.load(path, weights_only=False)
        if state["config"] != asdict(cfg):
            raise ValueError(f"checkpoint {path} was written with another configuration: {state['config']}")
        net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
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

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train", leave=False)
    net.train()
    while step < cfg.steps:
        idx = torch.randint(0, x_all.shape[0], (cfg.batch_size,), generator=gen)
        x0 = x_all[idx]
        tau, a, s = _draw_times(schedule, cfg.batch_size, gen, cfg.t_eps)
        eps = torch.randn(x0.shape, generator=gen)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        xt = a.reshape(shape) * x0 + s.reshape(shape) * eps
        if y_all is not None:
            y = y_all[idx].clone()
            drop = torch.rand(cfg.batch_size, generator=gen) < cfg.label_dropout
            y[drop] = n_classes
            pred = net(xt, tau, y)
        else:
            pred = net(xt, tau)
        loss = ((pred - eps) ** 2).mean()
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
