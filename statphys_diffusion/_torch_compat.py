"""NumPy emulations of the torch float32 ops diffusers uses to build its schedules.

They let :meth:`DiscreteSchedule.from_diffusers` reproduce diffusers'
``alphas_cumprod`` bit for bit without importing torch. The tests compare them
with torch itself where torch is installed.
"""

from __future__ import annotations

import numpy as np


def torch_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=torch.float32)`` on the CPU.

    torch computes ``step = (end - start) / (steps - 1)`` in float32, then the
    first half as ``start + step * i`` and the second half as
    ``end - step * (steps - 1 - i)``, each with one fused multiply-add (one
    rounding). The float32 product ``step * i`` is exact in float64 for
    ``steps < 2**29``, so one float64 operation rounded to float32 matches.
    """
    f = np.float32
    steps = int(steps)
    if steps < 1:
        raise ValueError("steps must be >= 1")
    s0, s1 = f(start), f(end)
    if steps == 1:
        return np.array([s0], dtype=np.float32)
    step = np.float64(f((s1 - s0) / f(steps - 1)))
    i = np.arange(steps, dtype=np.float64)
    half = steps // 2
    lo = np.float64(s0) + step * i
    hi = np.float64(s1) - step * (steps - 1 - i)
    return np.where(i < half, lo, hi).astype(np.float32)


def torch_cumprod_f32(values: np.ndarray) -> np.ndarray:
    """``torch.cumprod`` of a float32 CPU tensor: float64 accumulator, float32 output."""
    return np.cumprod(np.asarray(values, dtype=np.float32).astype(np.float64)).astype(np.float32)
