"""Command line: ``statphys-diffusion predict`` (the main job).

Examples
--------
statphys-diffusion predict --out report                  # CIFAR-10 from ../shared/data
statphys-diffusion predict --data gmm2d --n 2000 --out r2
statphys-diffusion predict --data-path cifar10-jpeg.zip --quick --schedule ddpm-linear
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import datasets
from .report import SCHEDULES, ReportConfig, make_report


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="statphys-diffusion", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser(
        "predict",
        help="write a report of the package's predictions for a data set",
        description="Write report.md, figures/, results.csv and results.json for a data set.",
    )
    pr.add_argument("--data", default="cifar10", help=f"cifar10 (default) or one of {sorted(datasets.SYNTHETIC)}")
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
    return p


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
        points, labels = train.as_points(), train.labels
        if args.n is not None and args.n < points.shape[0]:
            keep = np.sort(rng.choice(points.shape[0], args.n, replace=False))
            points, labels = points[keep], labels[keep]
        qi = rng.choice(test.images.shape[0], min(args.n_query, test.images.shape[0]), replace=False)
        queries = test.as_points()[qi]
        source = f"CIFAR-10 JPEG zip {path}" + (" (quick: 100 images per class)" if args.quick else "")
        class_names = train.class_names
    else:
        n = 2000 if args.n is None else args.n
        model, points, labels = datasets.synthetic_dataset(args.data, n, rng)
        queries = model.sample(args.n_query, 0.0, rng).x0
        source = f"synthetic '{args.data}': {datasets.SYNTHETIC[args.data][0]}"
        class_names = None
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
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
