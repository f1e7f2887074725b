"""Numerical kernels: plain arrays in, arrays out, no validation (the API layer validates)."""

import os as _os

#: Whether the numba kernels use numba's on-disk cache (``cache=True``): a process loads the
#: machine code a previous one compiled instead of paying 3-10 s of compilation on its first
#: numeric call. The cache lives in ``__pycache__`` beside the kernels, or in numba's user-wide
#: directory (``NUMBA_CACHE_DIR``) where that is not writable; numba keys it on the source
#: file's modification time and size, so an edited kernel recompiles. Tested: a second process
#: loads from it, a stale cache recompiles, two processes compiling at once both finish
#: (tests/test_numba_cache.py). ``STATPHYS_DIFFUSION_NUMBA_CACHE=0`` switches it off.
CACHE = _os.environ.get("STATPHYS_DIFFUSION_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")
