"""The compute backend of a call: numpy/numba on the CPU, or torch on a device.

One check for every public function that takes ``backend=`` and ``device=`` (the exact models
and :func:`~statphys_diffusion.nearest_neighbours`), and one test for torch tensors that never
imports torch (a tensor exists only once torch has been imported).
"""

from __future__ import annotations

import sys

from ._checks import check_choice


def is_tensor(x) -> bool:
    """Is ``x`` a torch tensor? (Without importing torch.)"""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def check_backend(backend, device, *, cpu: str):
    """Validate ``backend`` in ``(cpu, "torch")`` and ``device``; return ``(backend, torch.device or None)``.

    ``cpu`` names the caller's CPU backend (``"numba"`` for the models' kernels, ``"numpy"`` for
    the nearest-neighbour search); ``device`` is only for ``"torch"`` (default: the CPU).
    """
    allowed = (cpu, "torch")
    check_choice(backend, allowed, "backend")
    if backend == cpu:
        if device is not None:
            raise ValueError(f"device is for backend='torch'; the {cpu} backend runs on the CPU")
        return backend, None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional dependency
        raise ValueError("backend='torch' needs torch installed (pip install torch)") from None
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device: {err}") from None
    return backend, dev


def check_tensor(x, name: str, d: int | None = None, *, min_rows: int = 0, rows: str = "M"):
    """A 2-D float32/float64 torch tensor without NaN or inf, with ``d`` columns (when given) and at
    least ``min_rows`` rows; ``rows`` names the row count in the message. Returns ``x``."""
    import torch

    if x.ndim != 2 or x.shape[0] < min_rows or (d is not None and x.shape[1] != d):
        want = f"({rows}, {d if d is not None else 'd'})"
        at_least = f" with at least {min_rows} rows" if min_rows > 0 else ""
        raise ValueError(f"{name} must have shape {want}{at_least}, got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be a float32 or float64 tensor, got {x.dtype}")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf (it must be finite)")
    return x
