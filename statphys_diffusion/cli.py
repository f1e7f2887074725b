"""Command line: ``statphys-diffusion predict`` (the main job), ``train`` and ``sample`` (torch).

Examples
--------
statphys-diffusion predict --out report                  # CIFAR-10 from ../shared/data
statphys-diffusion predict --data gmm2d --n 2000 --out r2
statphys-diffusion predict --data-path cifar10-jpeg.zip --quick --schedule ddpm-linear
statphys-diffusion train --size 16 --n 5000 --config tiny --steps 2000 --out runs/tiny16
statphys-diffusion train --classes cat,dog --conditional --config small --steps 20000 --out runs/catdog
statphys-diffusion sample --run runs/tiny16 --n 64 --steps 100 --out samples.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import datasets
from .report import SCHEDULES, ReportConfig, make_report


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="statphys-diffusion", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action="version", version=f"statphys-diffusion {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser(
        "predict",
        help="write a report of the package's predictions for a data set",
        description="Write report.md, figures/, results.csv and results.json for a data set.",
    )
    pr.add_argument(
        "--data",
        default="cifar10",
        help=f"cifar10 (default), one of {sorted(datasets.SYNTHETIC)}, or your own data: a .npy or .npz file "
        "(rows, or uint8 images) or an image folder PATH/train/<class>/",
    )
    pr.add_argument("--labels", default=None, help="with your own --data: a .npy of one integer class per row")
    pr.add_argument("--data-path", default=None, help=f"CIFAR-10 zip (else ${datasets.ENV_PATH} or ../shared/data)")
    pr.add_argument("--n", type=int, default=None, help="training points (default: all of CIFAR-10; 2000 synthetic)")
    pr.add_argument("--n-query", type=int, default=64, help="held-out points for measured curves (default 64)")
    pr.add_argument("--n-times", type=int, default=20, help="times on the measurement grid (default 20)")
    pr.add_argument("--schedule", default="ou", choices=sorted(SCHEDULES), help="noise schedule (default ou)")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument(
        "--sb-points",
        type=int,
        default=1000,
        help="training points (subsample) for the symmetry-breaking times; 0 skips them (default 1000)",
    )
    pr.add_argument(
        "--info-draws",
        type=int,
        default=1000,
        help="labelled data: training points for the per-class entropy-rate peaks; 0 skips them (default 1000)",
    )
    pr.add_argument("--quick", action="store_true", help="CIFAR-10: 100 images per class (minutes -> seconds)")
    pr.add_argument("--cache-dir", default=None, help=f"decoded-array cache (else ${datasets.ENV_CACHE})")
    pr.add_argument("--out", default="report", help="output directory (default ./report)")
    pr.add_argument("--no-progress", action="store_true", help="switch progress bars off")
    tr = sub.add_parser(
        "train",
        help="train a small DDPM on CIFAR-10 (needs torch); rerun the same command to resume",
        description="Train a UNet with the epsilon objective; writes run.json and checkpoint.pt into --out.",
    )
    tr.add_argument("--data-path", default=None, help="CIFAR-10 zip, cifar-10-python.tar.gz or folder tree")
    tr.add_argument("--size", type=int, default=16, help="resolution (area downsampling of 32 x 32; default 16)")
    tr.add_argument("--n", type=int, default=None, help="training images (random subset; default all)")
    tr.add_argument("--classes", default=None, help="comma-separated class names to keep (default all)")
    tr.add_argument("--grayscale", action="store_true")
    tr.add_argument("--config", default="tiny", help="network size: tiny (minutes) or small (about an hour)")
    tr.add_argument("--schedule", default="ddpm-linear", choices=sorted(SCHEDULES))
    tr.add_argument("--conditional", action="store_true", help="class-conditional with label dropout 0.1")
    tr.add_argument("--steps", type=int, default=2000)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=2e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--prediction",
        default="eps",
        choices=["eps", "x0", "v", "edm"],
        help="what the network predicts (default eps; x0, v or edm converge at low noise)",
    )
    tr.add_argument(
        "--noise",
        default="uniform",
        choices=["uniform", "lognormal", "logsnr"],
        help="training noise levels: uniform DDPM index (default), EDM log-normal, or uniform in log-SNR",
    )
    tr.add_argument("--device", default=None, help="torch device to train on (default: cpu)")
    tr.add_argument("--out", required=True, help="run directory")
    tr.add_argument("--no-progress", action="store_true")
    sa = sub.add_parser(
        "sample",
        help="sample from a trained run (needs torch)",
        description="Draw images from a run with DDPM ancestral or DDIM steps; writes .npz and a .png grid.",
    )
    sa.add_argument(
        "--run", required=True, help="run directory written by `train`, or a weights file written by `export_weights`"
    )
    sa.add_argument("--n", type=int, default=64)
    sa.add_argument("--steps", type=int, default=100)
    sa.add_argument("--sampler", default="ddpm", choices=["ddpm", "ddim"])
    sa.add_argument("--class", dest="y", default=None, help="class name (conditional runs)")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--device", default=None, help="torch device to sample on (default: cpu)")
    sa.add_argument("--out", default="samples.npz")
    sa.add_argument("--no-progress", action="store_true")
    return p


def _nets():
    try:
        from . import nets
    except ImportError as err:
        raise ValueError(f"train and sample need torch ({err}); pip install torch==2.13.0") from None
    return nets


def _train(args) -> int:
    nets = _nets()
    from .nets.run import train_images

    cfg = nets.TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        prediction=args.prediction,
        noise=args.noise,
    )
    classes = None if args.classes is None else [c.strip() for c in args.classes.split(",") if c.strip()]
    out = train_images(
        args.out,
        data_path=args.data_path,
        size=args.size,
        n=args.n,
        classes=classes,
        grayscale=args.grayscale,
        config=args.config,
        schedule=args.schedule,
        conditional=args.conditional,
        train_config=cfg,
        progress=not args.no_progress,
        device=args.device,
    )
    print(f"trained: {out}")
    return 0


def _output_dir(path: Path, option: str) -> Path:
    """Create an output directory up front, or say which option names a path that cannot be one."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option} {str(path)!r} cannot be created: {err.strerror or err}") from None
    return path


def _sample(args) -> int:
    _nets()
    from .nets.run import sample_run

    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a directory; give a file name such as samples.npz")
    _output_dir(out.parent, "--out")  # before sampling, not after
    imgs = sample_run(
        args.run,
        args.n,
        steps=args.steps,
        sampler=args.sampler,
        y=args.y,
        seed=args.seed,
        progress=not args.no_progress,
        device=args.device,
    )
    np.savez(out, images=imgs)
    _save_grid(imgs, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def _save_grid(imgs: np.ndarray, path: Path) -> None:
    from PIL import Image

    n, h, w, c = imgs.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * (h + 1) + 1, cols * (w + 1) + 1, c), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = imgs[i]
    Image.fromarray(grid[..., 0] if c == 1 else grid).resize((grid.shape[1] * 4, grid.shape[0] * 4), 0).save(path)


def _check_n(n: int | None, available: int, what: str) -> None:
    """Refuse --n above what the data holds (it used to run silently with fewer points)."""
    if n is not None and n > available:
        raise ValueError(f"--n {n} exceeds the {available} {what}: pass --n {available} or fewer")


def _predict(args) -> int:
    rng = np.random.default_rng(args.seed)
    progress = not args.no_progress
    if args.n is not None and args.n < 2:
        raise ValueError(f"--n must be at least 2, got {args.n}")
    if args.sb_points < 0:
        raise ValueError(f"--sb-points must be >= 0, got {args.sb_points}")
    if args.info_draws < 0:
        raise ValueError(f"--info-draws must be >= 0, got {args.info_draws}")
    if args.n_query < 2:
        raise ValueError(f"--n-query must be at least 2, got {args.n_query}")
    if args.n_times < 2:
        raise ValueError(f"--n-times must be at least 2 (a grid of times), got {args.n_times}")
    _output_dir(Path(args.out), "--out")
    schedule = SCHEDULES[args.schedule]()
    if args.data == "cifar10":
        path = datasets.find_cifar10(args.data_path)
        if path is None:
            print(
                "CIFAR-10 not found. Pass --data-path PATH (a zip of train/<class>/*.jpg), set "
                f"${datasets.ENV_PATH}, put it at ../shared/data/cifar10-jpeg.zip, or use a synthetic "
                f"data set: --data {{{','.join(sorted(datasets.SYNTHETIC))}}}.",
                file=sys.stderr,
            )
            return 2
        per_class = 100 if args.quick else None
        train = datasets.load_cifar10_zip(
            path, "train", cache_dir=args.cache_dir, max_per_class=per_class, progress=progress
        )
        test = datasets.load_cifar10_zip(path, "test", cache_dir=args.cache_dir, max_per_class=10, progress=progress)
        points: np.ndarray
        labels: np.ndarray | None
        points, labels = train.as_points(order="hwc"), train.labels
        _check_n(args.n, points.shape[0], "training images" + (" (--quick: 100 per class)" if args.quick else ""))
        if args.n is not None and args.n < points.shape[0]:
            keep = np.sort(rng.choice(points.shape[0], args.n, replace=False))
            points, labels = points[keep], labels[keep]
        qi = rng.choice(test.images.shape[0], min(args.n_query, test.images.shape[0]), replace=False)
        queries = test.as_points(order="hwc")[qi]
        source = f"CIFAR-10 JPEG zip {path}" + (" (quick: 100 images per class)" if args.quick else "")
        class_names = train.class_names
    elif args.data not in datasets.SYNTHETIC:
        points, labels, source = datasets.load_user_data(args.data, args.labels)
        if points.shape[0] < args.n_query + 2:
            raise ValueError(f"--data has {points.shape[0]} rows: at least --n-query + 2 = {args.n_query + 2} needed")
        # held-out queries come out of the data itself; the rest is the training set
        qi = rng.choice(points.shape[0], args.n_query, replace=False)
        keep = np.setdiff1d(np.arange(points.shape[0]), qi)
        _check_n(args.n, keep.size, f"rows left for training after --n-query {args.n_query} held-out rows")
        if args.n is not None and args.n < keep.size:
            keep = np.sort(rng.choice(keep, args.n, replace=False))
        queries, points = points[qi], points[keep]
        labels = None if labels is None else labels[keep]
        class_names = None
    else:
        n = 2000 if args.n is None else args.n
        model, points, labels = datasets.synthetic_dataset(args.data, n, rng)
        queries = model.sample(args.n_query, 0.0, rng=rng).x0
        source = f"synthetic '{args.data}': {datasets.SYNTHETIC[args.data][0]}"
        class_names = None
    print(
        f"data: N = {points.shape[0]} training points of dimension {points.shape[1]}, "
        f"{queries.shape[0]} held-out queries ({source})",
        file=sys.stderr,
    )
    config = ReportConfig(
        data=args.data,
        n_train=int(points.shape[0]),
        dim=int(points.shape[1]),
        schedule=args.schedule,
        seed=args.seed,
        n_query=int(queries.shape[0]),
        n_times=args.n_times,
        source=source,
        sb_points=args.sb_points,
        info_draws=args.info_draws,
        extra={"class_names": list(class_names)} if class_names is not None else {},
    )
    report = make_report(
        points, queries, labels=labels, config=config, schedule=schedule, out=Path(args.out), progress=progress
    )
    print(f"wrote {report}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "train":
            return _train(args)
        if args.command == "sample":
            return _sample(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
