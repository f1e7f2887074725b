"""Theory modules, one per result (docs/user_guide/); they use only the score-model protocol.

Each module declares its public names in its own ``__all__``; this package exports their union.
"""

import sys as _sys

from .associative_memory import *  # noqa: F403
from .attractors import *  # noqa: F403
from .central_branch import *  # noqa: F403
from .cloning import *  # noqa: F403
from .collapse import *  # noqa: F403
from .entropy_rate import *  # noqa: F403
from .fixed_points import *  # noqa: F403
from .geometric import *  # noqa: F403
from .immse import *  # noqa: F403
from .information import *  # noqa: F403
from .late_init import *  # noqa: F403
from .manifold_dimension import *  # noqa: F403
from .symmetry_breaking import *  # noqa: F403

# (the submodules are read from sys.modules: some share a name with the function they export)
_MODULES = (
    "associative_memory",
    "attractors",
    "central_branch",
    "cloning",
    "collapse",
    "entropy_rate",
    "fixed_points",
    "geometric",
    "immse",
    "information",
    "late_init",
    "manifold_dimension",
    "symmetry_breaking",
)
__all__ = [name for module in _MODULES for name in _sys.modules[f"{__name__}.{module}"].__all__]
