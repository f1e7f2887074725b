"""One progress-bar policy: ``progress=True`` wraps an iterable in a tqdm bar that disappears when done."""

from __future__ import annotations


def iterate(items, progress: bool, desc: str):
    """``items`` itself, or a tqdm bar over it (tqdm imported only when a bar is asked for)."""
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)
