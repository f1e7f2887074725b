"""A small CIFAR-10 classifier the package trains itself: labels for samples, features for FD_own.

Inception weights cannot be downloaded here, so Frechet distances are computed
in the penultimate feature space of this network and reported as ``FD_own``
(not comparable with published FID numbers). With ``noise_conditional=True``
the classifier also takes the time input and is trained on noised images
x_t = alpha_t x_0 + sigma_t eps, so that it estimates p_t(y | x_t) and can be
handed to :class:`~statphys_diffusion.nets.TorchScoreModel` as ``classifier``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._progress import iterate
from ..schedules import Schedule
from .models import timestep_embedding
from .train import _atomic_save, _draw_times

__all__ = ["SmallCNN", "train_classifier", "cached_classifier", "features", "log_posterior_fn"]


class SmallCNN(nn.Module):
    """Three conv stages (width, 2 width, 4 width) with GroupNorm, SiLU and pooling, then a linear head."""

    def __init__(self, in_channels: int = 3, n_classes: int = 10, width: int = 32, noise_conditional: bool = False):
        super().__init__()
        self.noise_conditional = noise_conditional
        chans = [in_channels, width, 2 * width, 4 * width]
        self.stages = nn.ModuleList()
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            self.stages.append(
                nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(min(8, c_out), c_out), nn.SiLU())
            )
        self.t_proj = nn.ModuleList(nn.Linear(64, c) for c in chans[1:]) if noise_conditional else None
        self.head = nn.Linear(4 * width, n_classes)
        self.feature_dim = 4 * width

    def features(self, x, tau=None):
        emb = None
        if self.noise_conditional:
            if tau is None:
                raise ValueError("this classifier is noise-conditional: pass the time input tau")
            emb = timestep_embedding(tau, 64).to(x.dtype)
        h = x
        for i, stage in enumerate(self.stages):
            h = stage[0](h)
            if emb is not None:
                h = h + self.t_proj[i](emb)[:, :, None, None]
            h = stage[2](stage[1](h))
            if i < len(self.stages) - 1 and h.shape[-1] > 1:
                h = nn.functional.avg_pool2d(h, 2)
        return h.mean(dim=(2, 3))

    def forward(self, x, tau=None):
        return self.head(self.features(x, tau))


def train_classifier(
    net: SmallCNN,
    images,
    labels,
    *,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    schedule: Schedule | None = None,
    progress: bool = True,
) -> list:
    """Cross-entropy training on (N, C, H, W) float images in [-1, 1]; returns the loss history.

    A noise-conditional network is trained on x_t at uniformly drawn times of ``schedule``.
    """
    x_all = torch.as_tensor(np.asarray(images, dtype=np.float32))
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if x_all.ndim != 4 or y_all.shape != (x_all.shape[0],):
        raise ValueError(f"images must be (N, C, H, W) and labels (N,), got {tuple(x_all.shape)}, {tuple(y_all.shape)}")
    if net.noise_conditional and schedule is None:
        raise ValueError("a noise-conditional classifier needs schedule=")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    it = iterate(range(steps), progress, "classifier")
    net.train()
    for _ in it:
        idx = torch.randint(0, x_all.shape[0], (batch_size,), generator=gen)
        x, y = x_all[idx], y_all[idx]
        tau = None
        if net.noise_conditional:
            assert schedule is not None  # checked above for a noise-conditional network
            tau, a, s = _draw_times(schedule, batch_size, gen, 1e-3)
            x = a[:, None, None, None] * x + s[:, None, None, None] * torch.randn(x.shape, generator=gen)
        loss = nn.functional.cross_entropy(net(x, tau), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    return losses


def cached_classifier(
    path, images, labels, *, n_classes: int, width: int = 32, steps: int = 3000, batch_size: int = 128, seed: int = 0
) -> SmallCNN:
    """A clean-image :class:`SmallCNN` trained once and stored at ``path`` (state dict and its settings).

    A file written with other settings (or another training-set size) is refused rather than reused.
    """
    from pathlib import Path

    x = np.asarray(images, dtype=np.float32)
    settings = {
        "in_channels": int(x.shape[1]),
        "n_classes": int(n_classes),
        "width": int(width),
        "steps": int(steps),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "n_train": int(x.shape[0]),
    }
    path = Path(path)
    torch.manual_seed(seed)
    net = SmallCNN(settings["in_channels"], n_classes, width=width)
    if path.is_file():
        state = torch.load(path, weights_only=True, map_location="cpu")
        if state["settings"] != settings:
            raise ValueError(f"{path} holds a classifier trained with {state['settings']}, not {settings}")
        net.load_state_dict(state["net"])
        net.eval()
        return net
    train_classifier(net, x, labels, steps=steps, batch_size=batch_size, seed=seed, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save({"net": net.state_dict(), "settings": settings}, path)
    return net


def features(net: SmallCNN, images, batch_size: int = 512) -> np.ndarray:
    """Penultimate features (N, feature_dim) of (N, C, H, W) images in [-1, 1] (clean: tau = 0 if noise-conditional)."""
    x_all = torch.as_tensor(np.asarray(images, dtype=np.float32))
    out = []
    with torch.no_grad():
        for lo in range(0, x_all.shape[0], batch_size):
            xb = x_all[lo : lo + batch_size]
            tau = torch.zeros(xb.shape[0]) if net.noise_conditional else None
            out.append(net.features(xb, tau).double().numpy())
    return np.concatenate(out)


def log_posterior_fn(net: SmallCNN, schedule: Schedule, image_shape: tuple):
    """``classifier(x (M, d), t) -> log p_t(y | x)`` for :class:`TorchScoreModel` (noise-conditional nets)."""
    from ..schedules import DiscreteSchedule

    if not net.noise_conditional:
        raise ValueError("log_posterior_fn needs a noise-conditional classifier")

    def fn(x, t):
        tau = float(t) - 1.0 if isinstance(schedule, DiscreteSchedule) else float(t)
        xb = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape((-1,) + tuple(image_shape))
        with torch.no_grad():
            logits = net(xb, torch.full((xb.shape[0],), tau))
        return torch.log_softmax(logits, dim=1).double().numpy()

    return fn
