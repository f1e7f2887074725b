"""A diffusers pipeline on disk (or in memory) as a score model, in one call.

A pipeline saved with ``save_pretrained`` (or downloaded beforehand) is a directory with
``model_index.json`` and one folder per component; the package needs its ``unet`` and its
``scheduler``. :func:`load_pipeline` reads them from local files only (no hub access at run
time), moves the UNet to the device and dtype asked for and wraps it with
:func:`~statphys_diffusion.nets.from_diffusers`.
"""

from __future__ import annotations

from pathlib import Path

from .adapter import TorchScoreModel, _torch, from_diffusers

__all__ = ["load_pipeline", "is_pipeline_dir"]


def is_pipeline_dir(path) -> bool:
    """True for a directory holding a saved diffusers pipeline (``model_index.json``, or ``unet/`` and
    ``scheduler/`` with their configs)."""
    p = Path(path)
    if not p.is_dir():
        return False
    if (p / "model_index.json").is_file():
        return True
    return (p / "unet" / "config.json").is_file() and (p / "scheduler" / "scheduler_config.json").is_file()


def _diffusers():
    try:
        import diffusers
    except ImportError as exc:  # pragma: no cover - exercised only without diffusers
        raise ImportError("load_pipeline needs diffusers: pip install diffusers") from exc
    return diffusers


def _read_dir(path: Path, dtype):
    """(unet, scheduler) of a saved pipeline directory, local files only."""
    diffusers = _diffusers()
    if not path.exists():
        raise ValueError(f"source {str(path)!r} does not exist")
    if not is_pipeline_dir(path):
        raise ValueError(
            f"source {str(path)!r} is not a saved diffusers pipeline: it needs model_index.json, or unet/config.json "
            "and scheduler/scheduler_config.json (what DiffusionPipeline.save_pretrained writes)"
        )
    if (path / "model_index.json").is_file():
        pipe = diffusers.DiffusionPipeline.from_pretrained(path, local_files_only=True)
        unet, scheduler = _components(pipe, "source")
    else:
        unet = diffusers.UNet2DModel.from_pretrained(path, subfolder="unet", local_files_only=True)
        scheduler = diffusers.DDPMScheduler.from_pretrained(path, subfolder="scheduler", local_files_only=True)
    return (unet if dtype is None else unet.to(dtype)), scheduler


def _components(pipe, name: str):
    unet, scheduler = getattr(pipe, "unet", None), getattr(pipe, "scheduler", None)
    if unet is None or scheduler is None:
        raise ValueError(f"{name} must have a `unet` and a `scheduler` (a DDPM-family pipeline), got {pipe!r}")
    return unet, scheduler


def load_pipeline(
    source,
    *,
    device=None,
    dtype=None,
    clip_denoised: bool | float | None = None,
    classes=None,
    null_class: int | None = None,
    **kwargs,
) -> TorchScoreModel:
    """The score model of a diffusers pipeline: a saved pipeline directory or a pipeline object.

    Parameters
    ----------
    source : str, path or pipeline
        A directory written by ``DiffusionPipeline.save_pretrained`` (read with
        ``local_files_only=True``: nothing is fetched), or a loaded pipeline with ``unet`` and
        ``scheduler`` (e.g. ``DDPMPipeline``, ``DDIMPipeline``).
    device : str or torch.device, optional
        Where the UNet runs (default: where it is, the CPU for a directory).
    dtype : torch.dtype, optional
        The UNet's floating-point type (e.g. ``torch.float64`` for finite-difference checks).
    clip_denoised, classes, null_class, kwargs
        As for :func:`~statphys_diffusion.nets.from_diffusers` (the scheduler's ``clip_sample`` is
        honoured by the package's samplers only; class-conditional UNets need ``null_class`` for
        their unconditional prediction).

    Returns
    -------
    TorchScoreModel
        Its schedule is the scheduler's own ``alphas_cumprod``.

    Examples
    --------
    >>> import statphys_diffusion.nets as sdn             # doctest: +SKIP
    >>> model = sdn.load_pipeline("path/to/ddpm-cifar10")  # doctest: +SKIP
    >>> model.dim                                          # doctest: +SKIP
    3072
    """
    torch = _torch()
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        unet, scheduler = _read_dir(Path(source if not isinstance(source, bytes) else source.decode()), dtype)
    else:
        unet, scheduler = _components(source, "source")
        if dtype is not None:
            unet = unet.to(dtype)
    unet = unet.eval()
    return from_diffusers(
        unet, scheduler, clip_denoised=clip_denoised, classes=classes, null_class=null_class, device=device, **kwargs
    )
