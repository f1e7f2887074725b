r"""Patch-posterior denoisers: locality and equivariance (Kamb & Ganguli's LS and ELS) and crop averages (PSPC).

Kamb & Ganguli, "An analytic theory of creativity in convolutional diffusion models" (arXiv
2412.20292, ICML 2025). A convolutional denoiser sees each output pixel through a finite
receptive field, so the best it can do is the posterior mean of that pixel given the noisy
k x k window around it. With the training set's patches as the prior, every output pixel i is a
posterior mean over clean k x k patches P,

    D_t(x)_i = sum_P w_P(x) c(P) / sum_P w_P(x),    w_P = exp(-|x_{Omega_i} - alpha_t P|^2 / (2 sigma_t^2)),

where x_{Omega_i} is the noisy window centred on pixel i (all channels), c(P) the centre pixel of P
(all channels share one weight) and the candidates are equally likely:

- **LS** (local score machine, :class:`LocalEmpirical`): P runs over the N training images' windows at
  the *same* position i. Windows that reach past the border are zero-padded in the noisy and the
  training images alike (padded entries then compare 0 with 0).
- **ELS** (equivariant local score machine, :class:`EquivariantLocalEmpirical`): P runs over every
  k x k patch of every training image at every position where it lies fully inside the image, for
  every output pixel; the noisy image is padded circularly, so the machine commutes with circular
  shifts of its input.

Neither is a score of one distribution: the score is *defined* from the denoiser by Tweedie's
relation, s_t(x) = (alpha_t D_t(x) - x) / sigma_t^2. At large t every weight is equal (LS gives the
training set's mean image; ELS the mean patch centre); at small t one patch takes the weight (a
patch mosaic of the training set). LS with a window that covers the whole image at every pixel
(k >= 2 max(H, W) - 1) is the exact empirical model.

The patch size ``patch_size`` is an odd integer, or a callable t -> k (the authors calibrate k(t)
per noise level against the network: :func:`~statphys_diffusion.calibrate_patch_size`).

Images are rows in the package's layout ((C, H, W) order, flattened), or (M, C, H, W) arrays. The
evaluation is the streaming patch kernel (:mod:`statphys_diffusion._kernels.patches`): distances by
GEMM, an online log-sum-exp, memory bounded by a chunk of candidates, never the (images x positions x
k^2) patch matrix; the collapsed-regime shortcut applies.

This implementation is written from the paper's formulas. Two choices of the authors' code are
deliberately not copied: it averages weights per training batch, and shares one log-sum-exp shift
across the noisy batch; here every query row has its own exact softmax over all candidates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _checks
from ._backend import check_backend
from ._kernels.patches import gather_locations, local_posterior_mean, patch_posterior_mean, patch_posterior_mean_torch
from .citations import references
from .schedules import OrnsteinUhlenbeck, Schedule

__all__ = ["LocalEmpirical", "EquivariantLocalEmpirical", "PatchPosteriorAverage", "DataDrivenLocalEmpirical"]

_CHUNK_BYTES = 64 << 20  # candidate keys and the (rows x candidates) logits of one chunk
_ROW_BLOCK = 4096  # query rows per pass over the candidates (the kernel's row_block)


def _images(train, image_shape, name: str = "train") -> np.ndarray:
    """(N, C, H, W) float array of the training images (rows in (C, H, W) order, images, or an ImageDataset)."""
    if hasattr(train, "images") and hasattr(train, "as_points"):  # an ImageDataset: (N, H, W, C) uint8
        n_, h_, w_, c_ = np.shape(train.images)
        image_shape = (c_, h_, w_) if image_shape is None else image_shape
    elif np.ndim(train) == 4:
        given = tuple(int(v) for v in np.shape(train)[1:])
        if image_shape is not None and given != tuple(int(v) for v in image_shape):
            raise ValueError(f"{name} has images of shape {given}, image_shape says {tuple(image_shape)}")
        image_shape = given
    arr = _checks.as_image_rows(train, name)  # refuses integer pixels, complex, NaN
    if image_shape is None:
        raise ValueError(f"{name} is given as rows: pass image_shape=(C, H, W)")
    shape = tuple(int(v) for v in image_shape)
    if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) != arr.shape[1]:
        raise ValueError(f"image_shape must be (C, H, W) with C*H*W = {arr.shape[1]}, got {image_shape!r}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one image")
    _checks.check_magnitude(arr, name)
    return np.ascontiguousarray(arr.reshape((arr.shape[0],) + shape))


def _check_k(k, name: str = "patch_size") -> int:
    k = _checks.check_positive_int(k, name)
    if k % 2 == 0:
        raise ValueError(f"{name} must be odd (a window centred on its pixel), got {k}")
    return k


class _ImageModel:
    """Shared: the training images, the schedule, the image geometry and the input checks."""

    def __init__(self, train, *, image_shape=None, schedule: Schedule | None = None, backend="numba", device=None):
        self._train = _images(train, image_shape)
        if schedule is None:
            schedule = OrnsteinUhlenbeck()
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self._backend, self._device = check_backend(backend, device, cpu="numba")

    @property
    def backend(self) -> str:
        """``"numba"`` (BLAS + the numba softmax) or ``"torch"`` (the same stream in torch, on ``device``)."""
        return self._backend

    def _posterior_mean(self, q, chunks, n_values, a, s2, lse: bool = False):
        """The streaming patch posterior on this model's backend; numpy in, numpy out (with ``lse``: and the
        log-normaliser per row, as the kernel's ``return_lse``)."""
        if self._backend == "numba":
            return patch_posterior_mean(q, chunks, n_values, a, s2, return_lse=lse)
        import torch

        dev = self._device
        tq = torch.as_tensor(q, device=dev)

        def tchunks():
            for keys, values in chunks():
                yield torch.as_tensor(keys, device=dev), torch.as_tensor(values, device=dev)

        got = patch_posterior_mean_torch(tq, tchunks, n_values, a, s2, return_lse=lse)
        return (got[0].cpu().numpy(), got[1].cpu().numpy()) if lse else got.cpu().numpy()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images."""
        c, h, w = (int(v) for v in self._train.shape[1:])
        return c, h, w

    @property
    def dim(self) -> int:
        return int(np.prod(self._train.shape[1:]))

    @property
    def n_images(self) -> int:
        return int(self._train.shape[0])

    @property
    def train(self) -> np.ndarray:
        """The training images, (N, C, H, W), read-only."""
        v = self._train.view()
        v.flags.writeable = False
        return v

    def _prep(self, x, t):
        x = _checks.as_image_rows(x, "x", image_shape=self.image_shape)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (M, {self.dim}) or (M, {self.image_shape}), got {x.shape}")
        t = _checks.check_time(t, self.schedule, allow_zero=False)
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        if not a > 0:
            raise ValueError(f"t={t} has alpha_t = 0: the denoiser is undefined there")
        dt = self._train.dtype if x.dtype == self._train.dtype else np.float64
        return x.astype(dt, copy=False).reshape((x.shape[0],) + self.image_shape), t, a, s2

    def _tweedie(self, d, x, t) -> np.ndarray:
        """s_t(x) = (alpha_t D_t(x) - x) / sigma_t^2 from the denoiser's output."""
        xr = _checks.as_image_rows(x, "x", image_shape=self.image_shape).astype(d.dtype, copy=False)
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return (a * d - xr) / s2

    def _chunk_images(self, per_image: int, width: int, rows: int, itemsize: int) -> int:
        """Training images per chunk: their ``per_image`` candidates (``width`` values each) and the
        (rows x candidates) logit buffer stay within the chunk budget."""
        rows = min(rows, _ROW_BLOCK)
        return max(1, _CHUNK_BYTES // max(1, per_image * (width + rows) * itemsize))


class _PatchModel(_ImageModel):
    """A patch model with a patch size, fixed or per time."""

    def __init__(
        self, train, *, patch_size, image_shape=None, schedule: Schedule | None = None, backend="numba", device=None
    ):
        super().__init__(train, image_shape=image_shape, schedule=schedule, backend=backend, device=device)
        self._k: int | Callable = patch_size if callable(patch_size) else self._check_size(patch_size)

    @staticmethod
    def _check_size(k, name: str = "patch_size") -> int:
        return _check_k(k, name)

    def patch_size(self, t: float) -> int:
        """The patch size k used at time t (the fixed one, or the calibrated k(t))."""
        return self._check_size(self._k(t), "patch_size(t)") if callable(self._k) else int(self._k)

    def denoise(self, x, t, *, patch_size: int | None = None) -> np.ndarray:
        """D_t(x) (M, d): each pixel's posterior mean over candidate patches (module docstring).

        ``patch_size`` overrides the model's k for this call.
        """
        img, t, a, s2 = self._prep(x, t)
        k = self.patch_size(t) if patch_size is None else self._check_size(patch_size)
        out = self._denoise_images(img, a, s2, k)
        return _checks.check_finite_output(out.reshape(img.shape[0], -1), "the denoiser")

    def score(self, x, t, *, patch_size: int | None = None) -> np.ndarray:
        """s_t(x) = (alpha_t D_t(x) - x) / sigma_t^2 (Tweedie's relation defines it), shape (M, d)."""
        return self._tweedie(self.denoise(x, t, patch_size=patch_size), x, t)

    def _denoise_images(self, img, a, s2, k, lse: bool = False):  # pragma: no cover - each model defines it
        raise NotImplementedError

    def _denoise_parts(self, x, t) -> tuple[np.ndarray, np.ndarray]:
        """(D_t(x) as images (M, C, H, W), the log-normaliser of each pixel's posterior (M, H, W)): what a
        shard of the training images contributes (:class:`~statphys_diffusion.ShardedLocalModel`)."""
        img, t, a, s2 = self._prep(x, t)
        return self._denoise_images(img, a, s2, self.patch_size(t), lse=True)


@references("kamb2024")
class LocalEmpirical(_PatchModel):
    r"""The local score machine (LS) of Kamb & Ganguli (2024): locality without equivariance.

    Each output pixel is the posterior mean of the training images' pixels at the same position,
    weighted by how well their k x k windows match the noisy window there (module docstring):

        D_t(x)_i = sum_n w_n X_n[i] / sum_n w_n,   w_n = exp(-|x_{Omega_i} - alpha_t X_{n, Omega_i}|^2 / (2 sigma_t^2)),

    zero padding at the borders. Cost per call: 4 M N C k^2 H W flops in GEMMs over the positions.

    Parameters
    ----------
    train : (N, C, H, W) array, (N, d) rows with ``image_shape``, or an ImageDataset
        The training images, in the network's range (e.g. [-1, 1]).
    patch_size : odd int or callable t -> odd int
        The window size k (or k(t), e.g. from :func:`~statphys_diffusion.calibrate_patch_size`).
    image_shape : (C, H, W), needed when ``train`` is given as rows
    schedule : Schedule, default :class:`OrnsteinUhlenbeck`
    backend : {"numba", "torch"}
        ``"torch"`` runs the streaming softmax and its products in torch on ``device`` (any device;
        the candidate patches are cut on the CPU and moved there chunk by chunk).
    device : str or torch.device, optional (``backend="torch"`` only)

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> train = np.random.default_rng(0).uniform(-1, 1, (20, 1, 6, 6))
    >>> ls = sd.LocalEmpirical(train, patch_size=3)
    >>> ls.denoise(np.zeros((2, 36)), 0.5).shape
    (2, 36)
    """

    def __repr__(self) -> str:
        k = "k(t)" if callable(self._k) else self._k
        return f"LocalEmpirical(N={self.n_images}, image_shape={self.image_shape}, patch_size={k})"

    def _denoise_images(self, img, a, s2, k, lse: bool = False):
        m = img.shape[0]
        c, h, w = self.image_shape
        if self._backend == "numba":  # pixels shared among threads, one GEMM + fused pass per chunk each
            per = self._chunk_images(1, c * k * k, m, img.dtype.itemsize)
            return local_posterior_mean(img, self._train, k, a, s2, per, return_lse=lse)
        r = k // 2
        pad = ((0, 0), (0, 0), (r, r), (r, r))
        xp = np.pad(img, pad)
        tp = np.pad(self._train, pad).astype(img.dtype, copy=False)
        n = tp.shape[0]
        out = np.empty((m, c, h, w), dtype=img.dtype)
        norm = np.empty((m, h, w))
        per = self._chunk_images(1, c * k * k, m, img.dtype.itemsize)
        for i in range(h):
            for j in range(w):
                q = np.ascontiguousarray(xp[:, :, i : i + k, j : j + k].reshape(m, -1))
                keys_all = tp[:, :, i : i + k, j : j + k]
                vals_all = self._train[:, :, i, j]

                def chunks(keys_all=keys_all, vals_all=vals_all):
                    for n0 in range(0, n, per):
                        keys = np.ascontiguousarray(keys_all[n0 : n0 + per].reshape(-1, c * k * k))
                        yield keys, np.ascontiguousarray(vals_all[n0 : n0 + per], dtype=img.dtype)

                out[:, :, i, j], norm[:, i, j] = self._posterior_mean(q, chunks, c, a, s2, lse=True)
        return (out, norm) if lse else out


@references("kamb2024")
class EquivariantLocalEmpirical(_PatchModel):
    r"""The equivariant local score machine (ELS) of Kamb & Ganguli (2024): locality and equivariance.

    Each output pixel is the posterior mean of the centre pixels of *all* k x k patches of all
    training images (every position where the patch lies fully inside its image), weighted by how
    well they match the noisy window around the pixel; the noisy image is padded circularly
    (module docstring):

        D_t(x)_i = sum_P w_P c(P) / sum_P w_P,   w_P = exp(-|x_{Omega_i} - alpha_t P|^2 / (2 sigma_t^2)).

    The machine commutes with circular shifts of x. Cost per call: 4 M H W N (H-k+1)(W-k+1) C k^2
    flops; the candidates are built one chunk of training images at a time.

    Parameters
    ----------
    train, patch_size, image_shape, schedule
        As for :class:`LocalEmpirical`; k must not exceed the image's height or width.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> train = np.random.default_rng(0).uniform(-1, 1, (10, 1, 6, 6))
    >>> els = sd.EquivariantLocalEmpirical(train, patch_size=3)
    >>> x = np.random.default_rng(1).standard_normal((1, 1, 6, 6))
    >>> d = els.denoise(x, 0.3).reshape(1, 1, 6, 6)
    >>> d_shifted = els.denoise(np.roll(x, 2, axis=3), 0.3).reshape(1, 1, 6, 6)
    >>> bool(np.allclose(np.roll(d, 2, axis=3), d_shifted))
    True
    """

    def __repr__(self) -> str:
        k = "k(t)" if callable(self._k) else self._k
        return f"EquivariantLocalEmpirical(N={self.n_images}, image_shape={self.image_shape}, patch_size={k})"

    def n_patches(self, k: int) -> int:
        """Candidate patches for window size k: N (H - k + 1)(W - k + 1)."""
        _, h, w = self.image_shape
        return self.n_images * max(0, h - k + 1) * max(0, w - k + 1)

    def _denoise_images(self, img, a, s2, k, lse: bool = False):
        m = img.shape[0]
        c, h, w = self.image_shape
        if k > h or k > w:
            raise ValueError(f"patch_size={k} exceeds the image ({h} x {w}): ELS takes patches lying inside an image")
        r = k // 2
        xp = np.pad(img, ((0, 0), (0, 0), (r, r), (r, r)), mode="wrap")
        # query windows (M, C, H, W, k, k) -> rows (M H W, C k^2), one per output pixel
        win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
        q = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5).reshape(m * h * w, c * k * k))
        hv, wv = h - k + 1, w - k + 1
        per = self._chunk_images(hv * wv, c * k * k, m * h * w, img.dtype.itemsize)
        train = self._train

        def chunks():
            for n0 in range(0, train.shape[0], per):
                block = train[n0 : n0 + per].astype(img.dtype, copy=False)
                pw = np.lib.stride_tricks.sliding_window_view(block, (k, k), axis=(2, 3))
                keys = np.ascontiguousarray(pw.transpose(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k))
                centres = block[:, :, r : r + hv, r : r + wv].transpose(0, 2, 3, 1).reshape(-1, c)
                yield keys, np.ascontiguousarray(centres)

        out, norm = self._posterior_mean(q, chunks, c, a, s2, lse=True)
        img_out = out.reshape(m, h, w, c).transpose(0, 3, 1, 2)
        return (img_out, norm.reshape(m, h, w)) if lse else img_out


@references("niedoba2024")
class PatchPosteriorAverage(_PatchModel):
    r"""The square-crop patch-posterior denoiser (PSPC) of Niedoba, Zwartsenberg, Murphy & Wood (2024).

    Niedoba et al., "Towards a mechanistic explanation of diffusion model generalization" (arXiv
    2411.19339, ICML 2025). Every s x s crop C of the noisy image (all positions where it lies inside
    the image, stride 1) gets its own posterior mean of the clean crop, E[x_C | z_C], under the
    empirical distribution of the training images' crops; overlapping crop means are averaged per
    pixel:

        D_t(x) = (sum_C C^T C)^{-1} sum_C C^T E[x_C | z_C],
        E[x_C | z_C] = sum_P w_P P / sum_P w_P,   w_P = exp(-|z_C - alpha_t P|^2 / (2 sigma_t^2)),

    with C the crop's selection matrix (C^T C counts the crops covering each pixel). The candidate
    crops P are the training images' crops at the same position (``equivariant=False``, the default)
    or at every position (``equivariant=True``). With s equal to the side of a square image there is
    one crop and the model is the exact empirical model.

    Parameters
    ----------
    train, image_shape, schedule
        As for :class:`LocalEmpirical`.
    patch_size : int or callable t -> int
        The crop side s(t) (any positive integer up to the image's smaller side).
    equivariant : bool
        Candidates from every position instead of the crop's own.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> train = np.random.default_rng(0).uniform(-1, 1, (20, 1, 4, 4))
    >>> x = np.random.default_rng(1).standard_normal((3, 16))
    >>> whole = sd.PatchPosteriorAverage(train, patch_size=4)  # one crop, the whole image
    >>> exact = sd.EmpiricalDistribution(train.reshape(20, 16))
    >>> bool(np.allclose(whole.denoise(x, 0.5), exact.denoise(x, 0.5)))
    True
    """

    def __init__(
        self,
        train,
        *,
        patch_size,
        image_shape=None,
        schedule: Schedule | None = None,
        equivariant=False,
        backend="numba",
        device=None,
    ):
        super().__init__(
            train, patch_size=patch_size, image_shape=image_shape, schedule=schedule, backend=backend, device=device
        )
        self.equivariant = bool(equivariant)

    def __repr__(self) -> str:
        k = "s(t)" if callable(self._k) else self._k
        kind = ", equivariant" if self.equivariant else ""
        return f"PatchPosteriorAverage(N={self.n_images}, image_shape={self.image_shape}, patch_size={k}{kind})"

    @staticmethod
    def _check_size(k, name: str = "patch_size") -> int:
        return _checks.check_positive_int(k, name)  # any crop side, odd or even

    def _crops(self, img, a, s2, s, lse: bool = False):
        """Per crop position (i, j): (i, j, E[x_C | z_C] as (M, C, s, s), and with ``lse`` the log-normaliser
        of the crop's posterior (M,)); in the queries' dtype."""
        m = img.shape[0]
        c, h, w = self.image_shape
        if s > h or s > w:
            raise ValueError(f"patch_size={s} exceeds the image ({h} x {w}): crops lie inside the image")
        hv, wv = h - s + 1, w - s + 1
        dim = c * s * s
        train = self._train.astype(img.dtype, copy=False)
        qwin = np.lib.stride_tricks.sliding_window_view(img, (s, s), axis=(2, 3))  # (M, C, hv, wv, s, s)
        twin = np.lib.stride_tricks.sliding_window_view(train, (s, s), axis=(2, 3))  # (N, C, hv, wv, s, s)
        per_img = hv * wv if self.equivariant else 1
        per = self._chunk_images(per_img, dim, m * per_img, img.dtype.itemsize)
        n = train.shape[0]
        if self.equivariant:

            def chunks_all():
                for n0 in range(0, n, per):
                    block = twin[n0 : n0 + per].transpose(0, 2, 3, 1, 4, 5).reshape(-1, dim)
                    keys = np.ascontiguousarray(block)
                    yield keys, keys

            q = np.ascontiguousarray(qwin.transpose(0, 2, 3, 1, 4, 5).reshape(m * hv * wv, dim))
            means, norm = self._posterior_mean(q, chunks_all, dim, a, s2, lse=True)
            means, norm = means.reshape(m, hv, wv, c, s, s), norm.reshape(m, hv, wv)
        for i in range(hv):
            for j in range(wv):
                if self.equivariant:
                    crop_mean, crop_norm = means[:, i, j], norm[:, i, j]
                else:
                    q = np.ascontiguousarray(qwin[:, :, i, j].reshape(m, dim))
                    keys_all = twin[:, :, i, j]

                    def chunks(keys_all=keys_all):
                        for n0 in range(0, n, per):
                            keys = np.ascontiguousarray(keys_all[n0 : n0 + per].reshape(-1, dim))
                            yield keys, keys

                    crop_mean, crop_norm = self._posterior_mean(q, chunks, dim, a, s2, lse=True)
                    crop_mean = crop_mean.reshape(m, c, s, s)
                yield (i, j, crop_mean, crop_norm) if lse else (i, j, crop_mean)

    def _denoise_images(self, img, a, s2, s):
        # accumulated as the crops come: the memory of one crop, not of all of them
        return _crop_average(self._crops(img, a, s2, s), img.shape[0], self.image_shape).astype(img.dtype, copy=False)

    def _denoise_parts(self, x, t) -> tuple[np.ndarray, np.ndarray]:
        """(every crop's posterior mean (M, hv, wv, C, s, s), its log-normaliser (M, hv, wv)): what a shard
        of the training images contributes (:class:`~statphys_diffusion.ShardedLocalModel`, merged per crop
        and then averaged per pixel by :func:`average_crops`)."""
        img, t, a, s2 = self._prep(x, t)
        s = self.patch_size(t)
        c, h, w = self.image_shape
        m = img.shape[0]
        means = np.empty((m, h - s + 1, w - s + 1, c, s, s), dtype=img.dtype)
        norm = np.empty((m, h - s + 1, w - s + 1))
        for i, j, crop_mean, crop_norm in self._crops(img, a, s2, s, lse=True):
            means[:, i, j], norm[:, i, j] = crop_mean, crop_norm
        return means, norm


def average_crops(means: np.ndarray, image_shape) -> np.ndarray:
    """PSPC's last step: (M, hv, wv, C, s, s) crop means -> (M, C, H, W) images, each pixel the average of
    the crops covering it, (sum_C C^T C)^{-1} sum_C C^T E[x_C | z_C] (float64)."""
    m, hv, wv = means.shape[:3]
    return _crop_average(((i, j, means[:, i, j]) for i in range(hv) for j in range(wv)), m, image_shape)


def _crop_average(crops, m: int, image_shape) -> np.ndarray:
    """Sum the (i, j, (M, C, s, s) mean) crops into (M, C, H, W) float64 at their offsets; divide each pixel by
    the number of crops covering it."""
    c, h, w = image_shape
    acc = np.zeros((m, c, h, w), dtype=np.float64)
    counts = np.zeros((h, w))
    for i, j, mean in crops:
        s = mean.shape[-1]
        acc[:, :, i : i + s, j : j + s] += mean
        counts[i : i + s, j : j + s] += 1.0
    return acc / counts


@references("lukoianov2025")
class DataDrivenLocalEmpirical(_ImageModel):
    r"""Locality from the data's own correlations (after Lukoianov, Yuan, Solomon & Sitzmann 2025).

    Lukoianov et al. ("Locality in image diffusion models emerges from data statistics", arXiv
    2509.09672, NeurIPS 2025) trace a network's locality to the Wiener filter of the data, the optimal
    linear denoiser D^lin_t(x) = mu + W_t (x - alpha_t mu),

        W_t = alpha_t Sigma (alpha_t^2 Sigma + sigma_t^2 I)^{-1},

    whose row for an output pixel is concentrated on the pixels correlated with it, and use that
    pattern inside the empirical posterior. This class is written from that description (the
    authors' code may not be reused): at pixel location p the receptive field is

        M_p(t) = {q : A_t[p, q] >= threshold * max_q' A_t[p, q']},   A_t[p, q] = sum_{c, c'} |W_t[(c, p), (c', q)]|,

    the pixel locations whose Wiener weights (summed over channel pairs) reach ``threshold`` of the
    row's largest, and the output is the empirical posterior mean restricted to that field,

        D_t(x)_p = sum_n w_n X_n[p] / sum_n w_n,
        w_n = exp(-sum_{q in M_p(t)} |x_q - alpha_t X_{n, q}|^2 / (2 sigma_t^2)),

    all channels of a location sharing one weight. ``threshold = 0`` keeps every pixel: the exact
    empirical model. The field grows with the noise (W_t spreads as sigma_t grows), as the networks'
    do. The thresholding rule is this package's stated choice, not checked against the authors' exact
    one; ``masks=`` takes any other rule as a callable t -> (P, P) boolean array.

    Parameters
    ----------
    train, image_shape, schedule
        As for :class:`LocalEmpirical`.
    threshold : float in [0, 1] or callable t -> float
        The fraction of the row's largest Wiener weight a pixel needs to be in the field.
    covariance : (d, d) array, optional
        The data covariance Sigma (default: the training images' sample covariance, divisor N).
    masks : callable t -> (H W, H W) bool array, optional
        The fields themselves (row p: the locations pixel p sees), instead of the Wiener rule.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> train = np.random.default_rng(0).uniform(-1, 1, (20, 1, 4, 4))
    >>> x = np.random.default_rng(1).standard_normal((3, 16))
    >>> everywhere = sd.DataDrivenLocalEmpirical(train, threshold=0.0)  # every pixel in every field
    >>> exact = sd.EmpiricalDistribution(train.reshape(20, 16))
    >>> bool(np.allclose(everywhere.denoise(x, 0.5), exact.denoise(x, 0.5)))
    True
    """

    def __init__(
        self,
        train,
        *,
        threshold=0.1,
        image_shape=None,
        schedule: Schedule | None = None,
        covariance=None,
        masks=None,
        backend="numba",
        device=None,
    ):
        super().__init__(train, image_shape=image_shape, schedule=schedule, backend=backend, device=device)
        self._threshold = threshold if callable(threshold) else _check_threshold(threshold)
        flat = self._train.reshape(self._train.shape[0], -1).astype(np.float64)
        if covariance is None:
            z = flat - flat.mean(axis=0)
            cov = z.T @ z / flat.shape[0]
        else:
            cov = _checks.as_float_array(covariance, "covariance", dtype=np.float64)
            if cov.shape != (self.dim, self.dim):
                raise ValueError(f"covariance must have shape ({self.dim}, {self.dim}), got {cov.shape}")
        lam, u = np.linalg.eigh(0.5 * (cov + cov.T))
        if lam.min() < -1e-8 * max(1.0, float(lam.max())):
            raise ValueError(f"covariance must be positive semi-definite, has eigenvalue {lam.min():.3g}")
        self._lam, self._u = np.clip(lam, 0.0, None), u
        if masks is not None and not callable(masks):
            raise ValueError("masks must be a callable t -> (H W, H W) boolean array")
        self._masks = masks

    def __repr__(self) -> str:
        th = "threshold(t)" if callable(self._threshold) else self._threshold
        return f"DataDrivenLocalEmpirical(N={self.n_images}, image_shape={self.image_shape}, threshold={th})"

    def wiener_filter(self, t: float) -> np.ndarray:
        """W_t = alpha Sigma (alpha^2 Sigma + sigma^2 I)^{-1}, (d, d)."""
        t = _checks.check_time(t, self.schedule, allow_zero=False)
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        gain = a * self._lam / (a * a * self._lam + s2)
        return (self._u * gain) @ self._u.T

    def fields(self, t: float, *, threshold: float | None = None) -> np.ndarray:
        """The receptive fields M_p(t) as an (H W, H W) boolean array (row p: the locations pixel p sees)."""
        c, h, w = self.image_shape
        p = h * w
        if self._masks is not None:
            m = np.asarray(self._masks(t), dtype=bool)
            if m.shape != (p, p) or not np.all(np.diag(m)):
                raise ValueError(f"masks(t) must be a ({p}, {p}) boolean array containing its diagonal")
            return m
        th = self._threshold(t) if callable(self._threshold) else self._threshold
        th = _check_threshold(th if threshold is None else threshold)
        a_pix = np.abs(self.wiener_filter(t)).reshape(c, p, c, p).sum(axis=(0, 2))
        fields = a_pix >= th * a_pix.max(axis=1, keepdims=True)
        np.fill_diagonal(fields, True)
        return fields

    def denoise(self, x, t, *, threshold: float | None = None) -> np.ndarray:
        """D_t(x) (M, d): each pixel's empirical posterior mean over its receptive field (class docstring).

        ``threshold`` overrides the model's for this call.
        """
        img, t, a, s2 = self._prep(x, t)
        fields = self.fields(t, threshold=threshold)
        m = img.shape[0]
        c, h, w = self.image_shape
        xq = img.reshape(m, c, h * w)
        tr = self._train.astype(img.dtype, copy=False).reshape(self.n_images, c, h * w)
        out = np.empty((m, c, h * w), dtype=img.dtype)
        n = tr.shape[0]
        for p in range(h * w):
            idx = np.flatnonzero(fields[p])
            q = np.ascontiguousarray(xq[:, :, idx].reshape(m, -1))
            per = self._chunk_images(1, c * idx.size, m, img.dtype.itemsize)

            def chunks(idx=idx, p=p, per=per):
                for n0 in range(0, n, per):
                    block = tr[n0 : n0 + per]
                    keys = np.empty((block.shape[0], c * idx.size), dtype=block.dtype)
                    gather_locations(block, idx, keys)  # = block[:, :, idx].reshape(len(block), -1)
                    yield keys, np.ascontiguousarray(block[:, :, p])

            out[:, :, p] = self._posterior_mean(q, chunks, c, a, s2)
        return _checks.check_finite_output(out.reshape(m, -1), "the denoiser")

    def score(self, x, t, *, threshold: float | None = None) -> np.ndarray:
        """s_t(x) = (alpha_t D_t(x) - x) / sigma_t^2, shape (M, d)."""
        return self._tweedie(self.denoise(x, t, threshold=threshold), x, t)


def _check_threshold(value) -> float:
    return _checks.check_real(value, "threshold", lo=0.0, hi=1.0)
