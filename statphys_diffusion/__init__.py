"""statphys_diffusion: the statistical physics of generative diffusion, exact and tested.

Public API: schedules, exact noisy data models, samplers and convention
converters. See README.md and DESIGN.md for conventions (x_t = alpha_t x_0 +
sigma_t eps, points are rows, time runs forward, entropies in nats).
"""

import sys as _sys

from .conventions import *  # noqa: F403
from .empirical import *  # noqa: F403
from .guidance import *  # noqa: F403
from .manifold import *  # noqa: F403
from .mixture import *  # noqa: F403
from .nearest import *  # noqa: F403
from .online_posterior import *  # noqa: F403
from .protocols import *  # noqa: F403
from .regime import *  # noqa: F403
from .schedules import *  # noqa: F403
from .spectrum import *  # noqa: F403
from .sweep import *  # noqa: F403
from .theory import *  # noqa: F403

__version__ = "0.1.0"

# each module declares its public names in its own __all__; the package exports their union
_MODULES = (
    "conventions",
    "empirical",
    "guidance",
    "manifold",
    "mixture",
    "nearest",
    "online_posterior",
    "protocols",
    "regime",
    "schedules",
    "spectrum",
    "sweep",
    "theory",
)
__all__ = [name for module in _MODULES for name in _sys.modules[f"{__name__}.{module}"].__all__]
