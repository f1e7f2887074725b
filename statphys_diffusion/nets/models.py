"""Small noise-prediction networks that train on a 2-core CPU.

- :class:`MLPDenoiser`: for low-dimensional data (toy mixtures): sinusoidal
  time embedding, SiLU MLP with residual blocks.
- :class:`TabularResNet`: the tabular network of Achilli et al.'s synthetic experiments
  ("Losing dimensions", 2024): LayerNorm residual blocks with a projected time embedding.
- :class:`UNet`: a compact convolutional UNet for 8 x 8 to 32 x 32 images (Ho et
  al. 2020 in miniature): residual blocks with GroupNorm and SiLU, the time
  embedding added in every block, one self-free down/up path per resolution,
  optional class conditioning through a learned embedding with an extra "null"
  class so one network gives conditional and unconditional predictions
  (label dropout during training; Ho & Salimans 2022).

Both take (x, tau[, y]) and return eps with the shape of x.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .. import _checks

__all__ = ["MLPDenoiser", "TabularResNet", "UNet", "CONFIGS", "build"]


def timestep_embedding(tau: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of a (B,) time input (Vaswani et al. 2017; DDPM's)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=tau.device) / half)
    args = tau.double()[:, None] * freqs.double()[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


class _ClassEmbedding(nn.Module):
    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.n_classes = n_classes
        self.emb = nn.Embedding(n_classes + 1, dim)  # index n_classes = unconditional ("null")

    def forward(self, y, batch: int, device) -> torch.Tensor:
        if y is None:
            y = torch.full((batch,), self.n_classes, dtype=torch.long, device=device)
        return self.emb(y)


class MLPDenoiser(nn.Module):
    """eps_theta(x, tau[, y]) for flat inputs (B, d)."""

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, n_classes: int = 0, time_scale: float = 1.0):
        super().__init__()
        self.dim, self.time_scale = dim, time_scale
        self.t_emb = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))
        self.cls = _ClassEmbedding(n_classes, hidden) if n_classes else None
        self.hidden = hidden

    def forward(self, x, tau, y=None):
        e = self.t_emb(timestep_embedding(tau * self.time_scale, self.hidden).to(x.dtype))
        if self.cls is not None:
            e = e + self.cls(y, x.shape[0], x.device)
        h = self.inp(x)
        for blk in self.blocks:
            h = h + blk(h + e)
        return self.out(h)


class _TabularBlock(nn.Module):
    """LayerNorm-SiLU-Linear, plus the projected time embedding, LayerNorm-SiLU-Linear; residual."""

    def __init__(self, width: int, emb: int):
        super().__init__()
        self.first = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, width))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb, width))
        self.second = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, h, e):
        return h + self.second(self.first(h) + self.emb(e))


class TabularResNet(nn.Module):
    """eps_theta(x, tau) for flat inputs (B, d), sized as Achilli et al.'s synthetic-experiment network.

    Their ``DDPMTabular`` (github.com/beatriceachilli/losing-dimensions,
    ``synthetic-experiments/synthetic_score_common.py``) in these dimensions: a linear map
    d -> ``hidden`` (128), ``n_blocks`` (2) residual blocks, an output LayerNorm-SiLU-Linear;
    the time input is a sinusoidal embedding of dimension 128 followed by Linear-SiLU-Linear to
    ``emb_dim`` (512), projected into each block. With their VE training the time input is the
    noise level sigma itself (``tau = t`` on :class:`~statphys_diffusion.VarianceExploding`).
    About 0.5M parameters at d = 30.
    """

    def __init__(self, dim: int, hidden: int = 128, n_blocks: int = 2, emb_dim: int = 512, time_dim: int = 128):
        super().__init__()
        self.dim, self.time_dim = dim, time_dim
        self.t_emb = nn.Sequential(nn.Linear(time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(_TabularBlock(hidden, emb_dim) for _ in range(n_blocks))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x, tau, y=None):
        if y is not None:
            raise ValueError("TabularResNet is unconditional: y must be None")
        e = self.t_emb(timestep_embedding(tau, self.time_dim).to(x.dtype))
        h = self.inp(x)
        for blk in self.blocks:
            h = blk(h, e)
        return self.out(h)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int, groups: int):
        super().__init__()
        self.n1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.e = nn.Linear(emb, c_out)
        self.n2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, e):
        h = self.c1(nn.functional.silu(self.n1(x)))
        h = h + self.e(e)[:, :, None, None]
        h = self.c2(nn.functional.silu(self.n2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """A compact UNet: ``channels`` per resolution level, one residual block per level and direction."""

    def __init__(
        self,
        in_channels: int = 3,
        channels: tuple = (32, 64),
        n_classes: int = 0,
        emb_dim: int = 128,
        groups: int = 8,
        time_scale: float = 1.0,
    ):
        super().__init__()
        self.time_scale, self.emb_dim = time_scale, emb_dim
        self.t_emb = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.cls = _ClassEmbedding(n_classes, emb_dim) if n_classes else None
        self.inp = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = channels[0]
        for i, ch in enumerate(channels):
            self.down.append(_ResBlock(c, ch, emb_dim, groups))
            c = ch
            self.pool.append(nn.Conv2d(c, c, 3, stride=2, padding=1) if i < len(channels) - 1 else nn.Identity())
        self.mid = _ResBlock(c, c, emb_dim, groups)
        self.up = nn.ModuleList()
        self.unpool = nn.ModuleList()
        for i, ch in reversed(list(enumerate(channels))):
            self.up.append(_ResBlock(c + ch, ch, emb_dim, groups))
            c = ch
            self.unpool.append(nn.Upsample(scale_factor=2, mode="nearest") if i > 0 else nn.Identity())
        self.out = nn.Sequential(nn.GroupNorm(min(groups, c), c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))

    def forward(self, x, tau, y=None):
        e = self.t_emb(timestep_embedding(tau * self.time_scale, self.emb_dim).to(x.dtype))
        if self.cls is not None:
            e = e + self.cls(y, x.shape[0], x.device)
        h = self.inp(x)
        skips = []
        for blk, pool in zip(self.down, self.pool):
            h = blk(h, e)
            skips.append(h)
            h = pool(h)
        h = self.mid(h, e)
        for blk, unpool in zip(self.up, self.unpool):
            h = blk(torch.cat([h, skips.pop()], dim=1), e)
            h = unpool(h)
        return self.out(h)


# Sized for a 2-core CPU: ``tiny`` trains in minutes (CI smoke), ``small`` gives 16 x 16 samples in about an hour.
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"channels": (16, 32), "emb_dim": 64, "groups": 4},
    "small": {"channels": (32, 64, 128), "emb_dim": 128, "groups": 8},
}


def build(config: str, in_channels: int = 3, n_classes: int = 0, time_scale: float = 1.0) -> UNet:
    """A UNet from a named configuration (``tiny`` or ``small``)."""
    _checks.check_choice(config, sorted(CONFIGS), "config")
    return UNet(in_channels=in_channels, n_classes=n_classes, time_scale=time_scale, **CONFIGS[config])
