"""Torch side: small DDPMs that train on a CPU and adapters that feed any network to the analysis tools.

Needs the optional ``torch`` extra (``pip install torch==2.13.0`` gives the CPU build).
"""

from .adapter import TorchScoreModel, diffusers_schedule, from_diffusers
from .models import CONFIGS, MLPDenoiser, TabularResNet, UNet, build
from .pipelines import load_pipeline
from .run import load_network
from .train import NOISE_DISTRIBUTIONS, TrainConfig, TrainResult, train

__all__ = [
    "TorchScoreModel",
    "from_diffusers",
    "diffusers_schedule",
    "load_pipeline",
    "load_network",
    "MLPDenoiser",
    "TabularResNet",
    "UNet",
    "CONFIGS",
    "build",
    "TrainConfig",
    "TrainResult",
    "train",
    "NOISE_DISTRIBUTIONS",
]
