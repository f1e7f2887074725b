"""The data-driven locality model's denoiser: receptive-field keys gathered by numba against numpy.

``DataDrivenLocalEmpirical.denoise`` builds, for each pixel p and each chunk of training images, the
keys of p's receptive field, ``block[:, :, idx].reshape(n, -1)`` (idx: the field's locations). That
copy was numpy's fancy index along the last axis, which dominated a profile of the 50,000-image
network's locality jobs; the package now copies with the numba kernel
``_kernels.patches.gather_locations`` (serial: a parallel copy competed with BLAS's threads). Both
are timed here on the same inputs, whole denoiser calls (every pixel, every chunk), outputs checked
bit-identical (the same keys in the same order give the same GEMMs):

CIFAR-10-shaped data at 16 x 16 (3 channels), N = 5,000 smoothed random images, M = 50 noisy queries
(a sample batch of ``validation/generalisation.py``), float32; ``--quick``: N = 500, M = 8. The
fields are given (``masks=``) as square windows of side 3, 9 and 15 around each pixel (clipped at the
borders): the smoothed random images' own Wiener fields are only a few pixels wide, while CIFAR-10's at
the thresholds calibrated on the 50,000-image network (0 to 0.2) reach most of the image.
The share of the call spent in the copy is reported from a third timing: the numba path with the
keys' GEMMs and softmax skipped.

Usage: python benchmarks/bench_locality.py [--quick] [--out benchmarks/results/locality.csv]
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion import _bench
from statphys_diffusion._kernels.patches import gather_locations


def _denoise(model, x, t, gather: str):
    """The model's denoiser with the keys copied by ``gather``: "numba" (the package's), "numpy" (the
    fancy index it replaced) or "copy-only" (numba keys, nothing computed with them)."""
    img, t, a, s2 = model._prep(x, t)
    fields = model.fields(t)
    m = img.shape[0]
    c, h, w = model.image_shape
    xq = img.reshape(m, c, h * w)
    tr = model.train.astype(img.dtype).reshape(model.n_images, c, h * w)
    out = np.zeros((m, c, h * w), dtype=img.dtype)
    for p in range(h * w):
        idx = np.flatnonzero(fields[p])
        q = np.ascontiguousarray(xq[:, :, idx].reshape(m, -1))
        per = model._chunk_images(1, c * idx.size, m, img.dtype.itemsize)

        def chunks(idx=idx, p=p, per=per):
            for n0 in range(0, tr.shape[0], per):
                block = tr[n0 : n0 + per]
                if gather == "numpy":
                    keys = np.ascontiguousarray(block[:, :, idx].reshape(block.shape[0], -1))
                else:
                    keys = np.empty((block.shape[0], c * idx.size), dtype=block.dtype)
                    gather_locations(block, idx, keys)
                yield keys, np.ascontiguousarray(block[:, :, p])

        if gather == "copy-only":
            for _ in chunks():
                pass
        else:
            out[:, :, p] = model._posterior_mean(q, chunks, c, a, s2)
    return out.reshape(m, -1)


def main(argv=None) -> list[dict]:
    args = _bench.parser(__doc__, Path(__file__).parent / "results" / "locality.csv", "N = 500, M = 8").parse_args(argv)
    n, m = (500, 8) if args.quick else (5000, 50)
    c, side, t = 3, 16, 0.3
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (n, c, side, side)).astype(np.float32)
    train = (train + np.roll(train, 1, axis=2) + np.roll(train, 1, axis=3)) / 3  # correlated pixels
    ou = sd.OrnsteinUhlenbeck()
    a, s2 = float(ou.alpha(t)), float(ou.sigma2(t))
    x = (a * train[:m] + np.sqrt(s2) * rng.standard_normal((m, c, side, side))).astype(np.float32)
    rows = []
    ii, jj = np.divmod(np.arange(side * side), side)
    for width in (3, 9, 15):
        square = (np.abs(ii[:, None] - ii[None, :]) <= width // 2) & (np.abs(jj[:, None] - jj[None, :]) <= width // 2)
        model = sd.DataDrivenLocalEmpirical(train, masks=lambda t, square=square: square)
        fields = model.fields(t)
        model.denoise(x[:1], t)  # compile
        t_numba, d_numba = _bench.best_of(lambda model=model: model.denoise(x, t), args.repeat)
        t_numpy, d_numpy = _bench.best_of(lambda model=model: _denoise(model, x, t, "numpy"), args.repeat)
        t_copy, _ = _bench.best_of(lambda model=model: _denoise(model, x, t, "copy-only"), args.repeat)
        rows.append(
            {
                "field_side": width,
                "mean_field_size": float(fields.sum(axis=1).mean()),
                "N": n,
                "M": m,
                "numba_gather_s": t_numba,
                "numpy_gather_s": t_numpy,
                "speedup": t_numpy / t_numba,
                "copy_share_numba": t_copy / t_numba,
                "bit_identical": bool(np.array_equal(d_numba, d_numpy)),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "quick": bool(args.quick),
            }
        )
        print(rows[-1])
    _bench.write_table(rows, args.out)
    return rows


if __name__ == "__main__":
    main()
