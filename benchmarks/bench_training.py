"""Training throughput of one of the package's UNets beside a reference network, same run, same machine.

The reference is a diffusers ``UNet2DModel`` sized to a comparable parameter
count when diffusers is installed; otherwise a plain reference implementation
(a residual conv stack without down-sampling of the same width), and the output
says which. Both do the same work per step: epsilon-objective forward pass,
backward pass and an Adam update on a batch of 16 x 16 x 3 images, on the CPU
with torch's default thread count. Reported: images per second (best of
``repeat`` timed blocks after one warm-up block) and the ratio.

``--config`` picks the package's network (``small`` by default, ``tiny`` for the
associative-memory runs of validation/network_memorization.py) and ``--threads`` torch's
intra-op thread count (default: torch's own).

Usage: python benchmarks/bench_training.py [--quick] [--config tiny] [--threads 1] [--batch 64]
       [--out benchmarks/results/training.csv]
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch

from statphys_diffusion import _bench
from statphys_diffusion._io import write_rows_csv
from statphys_diffusion.nets import build


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def _diffusers_reference(target: int):
    """A UNet2DModel whose parameter count is closest to ``target`` among a few widths, or None."""
    try:
        import diffusers
    except ImportError:
        return None, "plain"
    best = None
    for w in (16, 24, 32, 40, 48, 64):
        net = diffusers.UNet2DModel(
            sample_size=16,
            in_channels=3,
            out_channels=3,
            layers_per_block=1,
            block_out_channels=(w, 2 * w, 4 * w),
            down_block_types=("DownBlock2D",) * 3,
            up_block_types=("UpBlock2D",) * 3,
            norm_num_groups=8,
        )
        if best is None or abs(_params(net) - target) < abs(_params(best) - target):
            best = net
    return best, f"diffusers {diffusers.__version__} UNet2DModel"


class _Plain(torch.nn.Module):
    """Reference without down-sampling: time-embedded residual conv blocks of constant width."""

    def __init__(self, width: int = 64, depth: int = 6):
        super().__init__()
        self.inp = torch.nn.Conv2d(3, width, 3, padding=1)
        self.t = torch.nn.Linear(1, width)
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(
                torch.nn.GroupNorm(8, width), torch.nn.SiLU(), torch.nn.Conv2d(width, width, 3, padding=1)
            )
            for _ in range(depth)
        )
        self.out = torch.nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x, tau):
        h = self.inp(x) + self.t(tau[:, None].float() / 1000)[:, :, None, None]
        for b in self.blocks:
            h = h + b(h)
        return self.out(h)


def _throughput(net, call, batch: int, steps: int, repeat: int) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)

    def block():
        for _ in range(steps):
            x0 = torch.randn(batch, 3, 16, 16, generator=gen)
            eps = torch.randn(batch, 3, 16, 16, generator=gen)
            tau = torch.randint(0, 1000, (batch,), generator=gen)
            xt = 0.7 * x0 + 0.7 * eps
            loss = ((call(net, xt, tau) - eps) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    best, _ = _bench.best_of(block, repeat, warm_up=True)
    return batch * steps / best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 steps per block (pipeline check, no timing claims)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--config", default="small", choices=("tiny", "small"))
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "training.csv"))
    args = p.parse_args(argv)
    steps = 2 if args.quick else 10
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours = build(args.config)
    ref, ref_name = _diffusers_reference(_params(ours))
    if ref is None:
        ref = _Plain()
        ref_name = "plain reference (residual conv stack, no down-sampling)"
        call_ref = lambda n, x, t: n(x, t)  # noqa: E731
    else:
        call_ref = lambda n, x, t: n(x, t).sample  # noqa: E731
    rows = []
    for name, net, call in (
        (f"statphys_diffusion {args.config} UNet", ours, lambda n, x, t: n(x, t.float())),
        (ref_name, ref, call_ref),
    ):
        ips = _throughput(net, call, args.batch, steps, 1 if args.quick else args.repeat)
        rows.append({"network": name, "parameters": _params(net), "batch": args.batch, "images_per_s": ips})
        print(rows[-1], flush=True)
    for r in rows:
        r["ratio_to_reference"] = r["images_per_s"] / rows[1]["images_per_s"]
        r["threads"] = torch.get_num_threads()
        r["cpus"] = os.cpu_count()
        r["machine"] = platform.processor() or platform.machine()
        r["torch"] = torch.__version__
        r["quick"] = args.quick
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_rows_csv(out, rows)
    return rows


if __name__ == "__main__":
    main()
