"""One progress-bar policy for the package.

``progress=True`` on a long call shows a tqdm bar that disappears when done (tqdm is imported
only when a bar is shown). The environment variable ``STATPHYS_DIFFUSION_PROGRESS`` overrides
every call: ``0`` (or ``off``, ``false``, ``no``) hides all bars, e.g. in batch jobs and CI
logs; ``1`` (or ``on``, ``true``, ``yes``) shows them even where a call passed
``progress=False``. Unset or empty: each call's ``progress`` decides.
"""

from __future__ import annotations

import os

ENV = "STATPHYS_DIFFUSION_PROGRESS"
_OFF = ("0", "off", "false", "no")
_ON = ("1", "on", "true", "yes")


def enabled(progress: bool) -> bool:
    """Whether to show a bar for a call that asked for ``progress`` (the environment overrides)."""
    env = os.environ.get(ENV, "").strip().lower()
    if env in _OFF:
        return False
    if env in _ON:
        return True
    if env:
        raise ValueError(f"{ENV} must be one of {_OFF + _ON} or unset, got {os.environ[ENV]!r}")
    return bool(progress)


def iterate(items, progress: bool, desc: str):
    """``items`` itself, or a tqdm bar over it."""
    if not enabled(progress):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)


def bar(progress: bool, desc: str, total: int, initial: int = 0):
    """A tqdm bar to ``update`` by hand, or None when no bar is shown."""
    if not enabled(progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False)
