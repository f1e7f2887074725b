"""Argument validation shared by the API layer.

Every public entry point validates its inputs here and raises ``ValueError``
naming the argument and the violated constraint. Kernels never validate.
"""

from __future__ import annotations

import numpy as np

_FLOATS = (np.float32, np.float64)


def as_float_array(value, name: str, *, dtype=None, ndim: int | None = None) -> np.ndarray:
    """Convert ``value`` to a finite float32/float64 array.

    Integer and other inputs become float64; float32 stays float32 unless
    ``dtype`` is given.
    """
    try:
        arr = np.asarray(value)
    except (OverflowError, ValueError) as exc:  # ragged lists, or Python ints beyond any float
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype} (take .real or abs() yourself)")
    if arr.dtype.kind in "USVMm":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype} (strings, bytes or dates)")
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (OverflowError, TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric and within float64's range: {exc}") from None
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype not in _FLOATS:
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_image_rows(x, name: str, *, image_shape=None, data_range=None, dtype=None) -> np.ndarray:
    """Images as rows of floats in the package's one image layout: (C, H, W) order, flattened.

    ``x`` may be an :class:`~statphys_diffusion.datasets.ImageDataset` (its ``as_points(order="chw")``),
    an (N, C, H, W) array (flattened; an (N, H, W, C) array that matches ``image_shape`` only after a
    transpose is refused with the transpose to use) or an (N, d) array of rows. Integer pixel types
    are refused (pixels must be floats in the network's range: ``x / 127.5 - 1`` for [-1, 1]), and so
    are values outside ``data_range`` (lo, hi) when it is given.
    """
    if hasattr(x, "images") and hasattr(x, "as_points"):
        x = x.as_points(order="chw")
    arr = np.asarray(x)
    if arr.dtype.kind in "uib":
        lo_hi = f", values {arr.min()}..{arr.max()}" if arr.size else ""
        raise TypeError(
            f"{name} has integer pixels (dtype {arr.dtype}{lo_hi}): pass floats in the range the network was "
            "trained on, e.g. x / 127.5 - 1 for [-1, 1] (ImageDataset.as_points does this), rows in (C, H, W) order"
        )
    arr = as_float_array(arr, name, dtype=dtype)
    if arr.ndim == 4:
        if image_shape is not None and tuple(arr.shape[1:]) != tuple(image_shape):
            c, h, w = (tuple(image_shape) + (None, None, None))[:3]
            if len(image_shape) == 3 and tuple(arr.shape[1:]) == (h, w, c):
                raise ValueError(
                    f"{name} has shape {arr.shape}, (N, H, W, C); the network takes (N, C, H, W) = (N, {c}, {h}, {w}): "
                    f"pass {name}.transpose(0, 3, 1, 2)"
                )
            raise ValueError(f"{name} has images of shape {arr.shape[1:]}, the network takes {tuple(image_shape)}")
        arr = arr.reshape(arr.shape[0], -1)
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be images (N, C, H, W) or rows (N, d), got shape {arr.shape}")
    if data_range is not None and arr.size:
        lo, hi = (float(v) for v in data_range)
        slack = 1e-6 * max(1.0, hi - lo)
        if arr.min() < lo - slack or arr.max() > hi + slack:
            raise ValueError(
                f"{name} has values in [{arr.min():.4g}, {arr.max():.4g}], outside [{lo:g}, {hi:g}], the range the "
                "network was trained on (images in [0, 255] or [0, 1] must be mapped to it first)"
            )
    return arr


def as_points(x, d: int, name: str = "x") -> np.ndarray:
    """Validate a batch of points of shape (M, d); a single (d,) point is refused."""
    arr = as_float_array(x, name)
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name} must have shape (M, {d}), got {arr.shape}")
    return arr


def check_time(t, schedule, name: str = "t", *, allow_zero: bool = True) -> float:
    """Validate a scalar time inside the schedule's range and return it as float."""
    if isinstance(t, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be a number, got {t!r}")
    arr = as_float_array(t, name, dtype=np.float64)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar time, got shape {arr.shape}")
    tf = float(arr)
    if not np.isfinite(tf):
        raise ValueError(f"{name} must be finite, got {tf}")
    lo, hi = schedule.t_min, schedule.t_max
    if tf < lo or tf > hi:
        raise ValueError(f"{name}={tf} is outside the schedule's range [{lo}, {hi}]")
    if not allow_zero and tf <= lo:
        raise ValueError(f"{name} must be > {lo} for this model (it has singular components)")
    return tf


_ORDERS = (None, "increasing", "decreasing")


def check_times(
    times,
    schedule=None,
    name: str = "times",
    *,
    order: str | None = None,
    min_size: int = 1,
    scalar: bool = True,
    allow_zero: bool = True,
    positive_alpha: bool = False,
) -> np.ndarray:
    """The package's one validator of a time grid; returns it as a float64 array of shape (n,).

    Parameters
    ----------
    times : float or array_like, shape (n,)
        The grid. A scalar is accepted as shape (1,) when ``scalar`` is true.
    schedule : Schedule, optional
        When given, every time must lie in ``[schedule.t_min, schedule.t_max]`` (``allow_zero``:
        as in :func:`check_time`), and with ``positive_alpha`` have ``alpha_t > 0``, where a
        denoiser is defined. Without a schedule the times need only be finite (and, as always,
        positive when ``allow_zero`` is false).
    order : {None, "increasing", "decreasing"}
        ``"increasing"``: strictly increasing (a curve over t); ``"decreasing"``: strictly
        decreasing (reverse time, a sampler's grid); None: any order, duplicates allowed.
    min_size : int
        The fewest times the caller can work with.
    """
    check_choice(order, _ORDERS, "order")
    arr = as_float_array(times, name, dtype=np.float64)
    if arr.ndim == 0 and scalar:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        what = "a scalar or a 1-D array" if scalar else "a 1-D array"
        raise ValueError(f"{name} must be {what} of times, got shape {arr.shape}")
    if arr.size < min_size:
        raise ValueError(f"{name} must hold at least {min_size} time{'s' if min_size > 1 else ''}, got {arr.size}")
    if arr.size > 1 and order is not None:
        steps = np.diff(arr)
        if order == "increasing" and np.any(steps <= 0):
            raise ValueError(f"{name} must be strictly increasing")
        if order == "decreasing" and np.any(steps >= 0):
            raise ValueError(f"{name} must be strictly decreasing (reverse time)")
    if schedule is None:
        if not allow_zero and np.any(arr <= 0):
            raise ValueError(f"{name} must be positive")
        return arr
    lo, hi = schedule.t_min, schedule.t_max
    outside = (arr < lo) | (arr > hi)
    if np.any(outside):
        raise ValueError(f"{name}: t={arr[outside][0]} is outside the schedule's range [{lo}, {hi}]")
    if not allow_zero and np.any(arr <= lo):
        raise ValueError(f"{name} must be > {lo} for this model (it has singular components)")
    if positive_alpha:
        for t in arr:
            if not float(schedule.alpha(float(t))) > 0:
                raise ValueError(f"{name}: t={t} has alpha_t = 0, where the denoiser is undefined")
    return arr


def check_weights(weights, k: int, name: str = "weights") -> np.ndarray:
    """Mixture weights: shape (K,), non-negative, summing to 1 within 1e-8."""
    w = as_float_array(weights, name, dtype=np.float64, ndim=1)
    if w.shape[0] != k:
        raise ValueError(f"{name} must have shape ({k},), got {w.shape}")
    if np.any(w < 0):
        raise ValueError(f"{name} must be non-negative")
    total = float(w.sum())
    if abs(total - 1.0) > 1e-8:
        raise ValueError(f"{name} must sum to 1, got {total!r}")
    return w / total


def check_labels(labels, k: int, name: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Integer class labels per component; returns (codes 0..C-1, class values)."""
    lab = np.asarray(labels)
    if lab.shape != (k,):
        raise ValueError(f"{name} must have shape ({k},), got {lab.shape}")
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise ValueError(f"{name} must be integers")
    classes, codes = np.unique(lab, return_inverse=True)
    return codes.astype(np.int64), classes


def check_positive_int(value, name: str) -> int:
    """A positive integer (an int, or an integral float); bool, None, NaN, inf and strings are refused."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if ok and isinstance(value, int) and not isinstance(value, np.integer):
        ok = value >= 1  # a Python int of any size (float() of a huge one would overflow)
    else:
        ok = ok and bool(np.isfinite(value)) and float(value) == int(value) and int(value) >= 1
    if not ok:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if int(value) > 2**53:
        raise ValueError(f"{name} must be at most 2**53 (float64's exact integers), got {value!r}")
    return int(value)


def check_choice(value, options, name: str, *, also: str = ""):
    """``value`` if it is one of ``options``, else a ValueError naming the argument, every allowed value and
    ``also``, and what was given. Returns ``value``. ``also`` beginning with "or " names what else is
    accepted ("'a', 'b' or a callable"); other words follow the listing ("'a' or 'b' (the patch models)").

    Unhashable values and arrays are refused the same way, never with a TypeError or an ambiguous-truth
    error from the membership test.
    """
    try:
        ok = bool(value in options)
    except (TypeError, ValueError):  # unhashable, or an array (its comparison has no single truth value)
        ok = False
    if not ok:
        items = [repr(o) for o in options]
        if also.startswith("or "):  # "'a', 'b', 'c' or a callable": one "or", before the alternative
            listing = ", ".join(items) + f" {also}"
        else:
            listing = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
            listing += f" {also}" if also else ""
        got = repr(value)
        got = got if len(got) <= 80 else got[:77] + "..."
        raise ValueError(f"{name} must be one of {listing}, got {got}")
    return value


def check_real(value, name: str, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A finite real number (not bool) in the stated interval, else a ValueError naming it."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else float("nan")
    if ok and np.isfinite(v):
        ok = (lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or (v < hi if hi_open else v <= hi))
    else:
        ok = False
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ValueError(f"{name} must be a finite number in {rng}, got {value!r}")
    return v


# squared norms of rows must stay finite in float64 (1.8e308): entries times sqrt(d) below this
MAGNITUDE_LIMIT = 1e150


def check_magnitude(arr: np.ndarray, name: str) -> None:
    """Refuse arrays whose squared row norms would overflow float64 (a silent NaN otherwise)."""
    if arr.size and float(np.max(np.abs(arr))) * np.sqrt(arr.shape[-1]) > MAGNITUDE_LIMIT:
        raise ValueError(
            f"{name}: entries up to {float(np.max(np.abs(arr))):.3g} are too large for float64 arithmetic (their "
            f"squared norms overflow; keep |{name}| times sqrt(d) below {MAGNITUDE_LIMIT:.0e}, or rescale the data)"
        )


def overflow_error(what: str) -> ValueError:
    """The error for a result computed from finite inputs that came out NaN or inf."""
    return ValueError(
        f"{what} overflowed float64 for these inputs (finite x, means and variances can still be too large "
        "or too small together, e.g. variances near 1e308): rescale the data"
    )


def check_finite_output(out: np.ndarray, what: str) -> np.ndarray:
    """A result computed from finite inputs that came out NaN or inf: say so instead of returning it."""
    if not np.all(np.isfinite(out)):
        raise overflow_error(what)
    return out


def plain_label(value):
    """A class label as a plain Python value: numpy scalars unwrapped (hashable, JSON-friendly)."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def point_then_time(x, t, func: str):
    """(x, t) for a pointwise function called ``func(model, x, t)``, accepting the old ``(model, t, x)``.

    The package's argument order (docs/user_guide/conventions.rst) puts the points before the time. A
    call in the old order (a scalar where the points go and an array where the time goes) is swapped
    with a DeprecationWarning.
    """
    if np.ndim(x) == 0 and np.ndim(t) >= 1:
        import warnings

        warnings.warn(
            f"{func}(model, t, x) is deprecated: the argument order is {func}(model, x, t)",
            DeprecationWarning,
            stacklevel=3,
        )
        return t, x
    return x, t


def keyword_rng(n_positional: int):
    """Decorator: ``rng`` becomes keyword-only (docs/user_guide/conventions.rst), while a call that still passes it as
    argument ``n_positional + 1`` works for one release with a DeprecationWarning."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            if len(args) > n_positional:
                if len(args) > n_positional + 1 or "rng" in kwargs:
                    raise TypeError(f"{fn.__name__}() takes {n_positional} positional arguments and rng by keyword")
                import warnings

                warnings.warn(
                    f"{fn.__name__}: pass rng by keyword (rng=...); a positional rng is deprecated",
                    DeprecationWarning,
                    stacklevel=2,
                )
                args, kwargs = args[:n_positional], dict(kwargs, rng=args[n_positional])
            return fn(*args, **kwargs)

        return inner

    return wrap


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """The rng policy (docs/user_guide/conventions.rst): None -> fresh entropy, an int -> a seed, a Generator as is.

    Anything else (a bool, a float, a legacy RandomState) is refused with a ValueError naming ``name``.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_))):
        if rng is not None and int(rng) < 0:
            raise ValueError(f"{name} must be a non-negative int seed, got {rng}")
        return np.random.default_rng(None if rng is None else int(rng))
    raise ValueError(f"{name} must be None (fresh entropy), an int seed or a numpy.random.Generator, got {rng!r}")
