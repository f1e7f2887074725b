"""CIFAR-10 zip loading on small generated files, and the predict command end to end."""

import csv
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from statphys_diffusion import cli, datasets


def _write_zip(path, n_per_class=3, classes=("cat", "dog"), size=4, fmt="PNG"):
    rng = np.random.default_rng(0)
    truth = {}
    with zipfile.ZipFile(path, "w") as zf:
        for split in ("train", "test"):
            zf.writestr(f"{split}/", "")
            for c in classes:
                zf.writestr(f"{split}/{c}/", "")
                for i in range(n_per_class):
                    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format=fmt)
                    name = f"{split}/{c}/{i:04d}.{'png' if fmt == 'PNG' else 'jpg'}"
                    zf.writestr(name, buf.getvalue())
                    truth[name] = img
    return truth


def test_zip_loader_reads_tree_and_caches(tmp_path):
    z = tmp_path / "tiny.zip"
    truth = _write_zip(z)  # PNG: lossless, so pixels must match exactly
    cache = tmp_path / "cache"
    ds = datasets.load_cifar10_zip(z, "train", cache_dir=cache, progress=False)
    assert ds.class_names == ("cat", "dog")
    assert ds.images.shape == (6, 4, 4, 3) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ds.images[4], truth["train/dog/0001.png"])
    assert len(list(cache.glob("*.npz"))) == 1
    again = datasets.load_cifar10_zip(z, "train", cache_dir=cache, progress=False)
    np.testing.assert_array_equal(again.images, ds.images)
    sub = datasets.load_cifar10_zip(z, "test", cache_dir=cache, max_per_class=2, progress=False)
    assert sub.images.shape[0] == 4
    pts = ds.as_points()
    assert pts.shape == (6, 48) and pts.min() >= -1 and pts.max() <= 1


def test_zip_loader_bad_input(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="zip"):
        datasets.load_cifar10_zip(bad, cache_dir=tmp_path, progress=False)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(ValueError, match="no images"):
        datasets.load_cifar10_zip(empty, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="split"):
        datasets.load_cifar10_zip(empty, "valid", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="path"):
        datasets.find_cifar10(tmp_path / "missing.zip")


@pytest.mark.cifar
def test_real_cifar10_zip_if_present(tmp_path):
    path = datasets.find_cifar10()
    if path is None:
        pytest.skip("CIFAR-10 zip not present")
    ds = datasets.load_cifar10_zip(path, "test", cache_dir=tmp_path, max_per_class=3, progress=False)
    assert ds.class_names == datasets.CIFAR10_CLASSES
    assert ds.images.shape == (30, 32, 32, 3)


def test_predict_synthetic_end_to_end(tmp_path):
    out = tmp_path / "rep"
    rc = cli.main(
        [
            "predict",
            "--data",
            "gmm1d",
            "--n",
            "300",
            "--n-times",
            "6",
            "--sb-points",
            "100",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    text = (out / "report.md").read_text()
    assert "Speciation time" in text and "Collapse" in text and "Symmetry breaking" in text
    assert (out / "figures" / "spectrum.png").is_file()
    assert (out / "figures" / "posterior_entropy.png").is_file()
    meta = json.loads((out / "results.json").read_text())
    assert meta["config"]["n_train"] == 300 and meta["config"]["seed"] == 0
    table = list(csv.DictReader(open(out / "results.csv")))
    # the long table: the same columns in every row, one row per quantity (per time, per class)
    assert list(table[0]) == ["section", "quantity", "class", "t", "value", "stderr", "ddpm_index", "n"]
    rows = {(r["quantity"], r["class"]) if r["class"] else r["quantity"]: r for r in table}
    entropy = [r for r in table if r["quantity"] == "posterior_entropy"]
    assert len(entropy) == 6 and all(r["t"] and r["stderr"] for r in entropy)
    # results.json holds the results (the table and each result's rows), not only the configuration
    assert meta["table"] == json.loads(json.dumps(meta["table"])) and len(meta["table"]) == len(table)
    assert [r["t"] for r in meta["results"]["posterior_collapse"]] == pytest.approx([float(r["t"]) for r in entropy])
    assert set(meta["results"]) >= {"covariance_spectrum", "sde", "potential", "posterior_collapse", "entropy_rate"}
    # independent check of t_S for 1-D OU: alpha^2 Lambda = sigma^2 <=> t = 1/2 log(1 + Lambda)
    model, pts, _ = datasets.synthetic_dataset("gmm1d", 300, np.random.default_rng(0))
    lam = np.var(pts[:, 0], ddof=1)
    assert float(rows["speciation_time"]["value"]) == pytest.approx(0.5 * np.log1p(lam), rel=1e-10)
    # geometric memorisation at t -> 0 in 1-D: rho = u / (1 + u) solves
    # 1/2 [-log(1 - rho) - rho + rho^2] = log N (the t = 0 limit of K, written in rho)
    from scipy.optimize import brentq

    rho = brentq(lambda r: 0.5 * (-np.log1p(-r) - r + r * r) - np.log(300), 1e-9, 1 - 1e-15)
    assert float(rows["effective_dimension_t0_predicted"]["value"]) == pytest.approx(rho, rel=1e-9)
    assert int(float(rows["retained_dimensions_t0_predicted"]["value"])) == 1
    # labelled data: per-class entropy-rate peaks; the two classes are mirror images, so their
    # peaks agree within the bootstrap errors
    assert "entropy-rate peaks" in text and (out / "figures" / "entropy_rate.png").is_file()
    p0, p1 = rows[("entropy_rate_peak_time", "0")], rows[("entropy_rate_peak_time", "1")]
    # (or within one step of the 6-point grid, which limits the resolution when the s.e. is 0)
    diff = abs(np.log(float(p0["value"]) / float(p1["value"])))
    grid_step = np.log(3.0 / 1e-3) / 5
    assert diff <= max(4 * np.hypot(float(p0["stderr"]), float(p1["stderr"])) / float(p0["value"]), grid_step)


def test_predict_reports_missing_cifar(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(datasets, "find_cifar10", lambda path=None: None)
    rc = cli.main(["predict", "--out", str(tmp_path / "x"), "--no-progress"])
    assert rc == 2
    assert "CIFAR-10 not found" in capsys.readouterr().err


def test_predict_bad_arguments(tmp_path, capsys):
    assert cli.main(["predict", "--data", "nope", "--out", str(tmp_path)]) == 2
    assert "data must be" in capsys.readouterr().err
    assert cli.main(["predict", "--data", "gmm1d", "--n", "1", "--out", str(tmp_path)]) == 2


def test_class_gaussian_model_from_images():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(30, 4, 4, 3), dtype=np.uint8)
    labels = np.arange(30) % 3
    ds = datasets.ImageDataset(imgs, labels, ("a", "b", "c"), "test")
    m = datasets.class_gaussian(ds, 2, ridge=1e-3)
    x = (imgs.astype(float) / 127.5 - 1).reshape(30, 2, 2, 2, 2, 3).mean(axis=(2, 4)).reshape(30, -1)
    for c in range(3):
        np.testing.assert_allclose(m.means[c], x[labels == c].mean(0))
        np.testing.assert_allclose(m.covariances[c], np.cov(x[labels == c].T) + 1e-3 * np.eye(12), atol=1e-12)
    np.testing.assert_allclose(m.class_weights, 1 / 3)
    with pytest.raises(ValueError, match="divide"):
        datasets.class_gaussian(ds, 3)


def _write_all_formats(root, rng):
    """The same 3 classes x 4 images (PNG, lossless) as a zip, a folder tree and an official-style tar.gz."""
    import io
    import pickle
    import tarfile
    import zipfile

    from PIL import Image

    names = ["cat", "dog", "frog"]
    imgs = {s: rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8) for s in ("train", "test")}
    labels = np.repeat(np.arange(3), 4)
    zpath = root / "c.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for s, arr in imgs.items():
            for i, (im, lab) in enumerate(zip(arr, labels)):
                buf = io.BytesIO()
                Image.fromarray(im).save(buf, format="PNG")
                zf.writestr(f"{s}/{names[lab]}/{i:04d}.png", buf.getvalue())
                d = root / "tree" / s / names[lab]
                d.mkdir(parents=True, exist_ok=True)
                (d / f"{i:04d}.png").write_bytes(buf.getvalue())
    tpath = root / "cifar-10-python.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:

        def add(name, obj):
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        add("batches.meta", {b"label_names": [n.encode() for n in names]})
        rows = imgs["train"].transpose(0, 3, 1, 2).reshape(12, -1)
        # five training batches as in the official release (here split 3/3/2/2/2)
        for b, sl in enumerate([slice(0, 3), slice(3, 6), slice(6, 8), slice(8, 10), slice(10, 12)], start=1):
            add(f"data_batch_{b}", {b"data": rows[sl], b"labels": labels[sl].tolist()})
        add("test_batch", {b"data": imgs["test"].transpose(0, 3, 1, 2).reshape(12, -1), b"labels": labels.tolist()})
    return zpath, root / "tree", tpath, imgs, labels


def test_loaders_give_identical_arrays_in_every_format(tmp_path):
    zpath, tree, tpath, imgs, labels = _write_all_formats(tmp_path, np.random.default_rng(0))
    cache = tmp_path / "cache"
    for split in ("train", "test"):
        got = [datasets.load_cifar10(p, split, cache_dir=cache, progress=False) for p in (zpath, tree, tpath)]
        for ds in got:
            np.testing.assert_array_equal(ds.images, imgs[split])
            np.testing.assert_array_equal(ds.labels, labels)
            assert ds.class_names == ("cat", "dog", "frog")
    # options: class filter (re-indexed), subset, resolution, grayscale
    sub = datasets.load_cifar10(tpath, classes=["frog", "cat"], n=5, size=8, grayscale=True, cache_dir=cache, seed=1)
    assert sub.images.shape == (5, 8, 8, 1) and sub.class_names == ("frog", "cat") and set(sub.labels) <= {0, 1}
    full = imgs["train"].astype(float).reshape(12, 8, 4, 8, 4, 3).mean(axis=(2, 4)) @ [0.299, 0.587, 0.114]
    keep = np.flatnonzero(np.isin(labels, [2, 0]))
    chosen = keep[np.sort(np.random.default_rng(1).choice(keep.size, 5, replace=False))]
    np.testing.assert_array_equal(sub.images[..., 0], np.rint(full[chosen]).astype(np.uint8))
    # second load comes from the cache
    assert any(cache.glob("cifar10-tar-train-*.npz"))


def test_loader_bad_input(tmp_path):
    zpath, tree, tpath, _, _ = _write_all_formats(tmp_path, np.random.default_rng(1))
    with pytest.raises(ValueError, match="unknown class names"):
        datasets.load_cifar10(zpath, classes=["cat", "horse"], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="size must divide"):
        datasets.load_cifar10(zpath, size=5, cache_dir=tmp_path, progress=False)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not a tar archive")
    with pytest.raises(ValueError, match="tar archive"):
        datasets.load_cifar10(bad, cache_dir=tmp_path)
    (tree / "train" / "dog" / "0099.png").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="cannot be decoded"):
        datasets.load_cifar10_folder(tree, cache_dir=tmp_path / "c2", progress=False)
    odd = tmp_path / "odd"
    (odd / "train" / "a").mkdir(parents=True)
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(odd / "train" / "a" / "0.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(odd / "train" / "a" / "1.png")
    with pytest.raises(ValueError, match="shape"):
        datasets.load_cifar10_folder(odd, cache_dir=tmp_path / "c3", progress=False)


def test_predict_on_the_users_own_data_files(tmp_path):
    """--data takes a .npy of rows, a .npz with labels, or an image folder; --labels adds classes.
    Each writes a report whose config names the file and counts the rows (minus the held-out queries)."""
    import json

    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 5)) * [2.0, 1.0, 1.0, 0.5, 0.5]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(120) % 3)
    np.savez(tmp_path / "d.npz", data=x, labels=np.arange(120) % 2)
    for c in ("a", "b"):
        (tmp_path / "imgs" / "train" / c).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(
                tmp_path / "imgs" / "train" / c / f"{i}.png"
            )
    common = ["--n-times", "4", "--sb-points", "0", "--info-draws", "0", "--n-query", "8", "--no-progress"]
    for data, extra, n_rows in (
        ("x.npy", ["--labels", str(tmp_path / "y.npy")], 112),
        ("d.npz", [], 112),
        ("imgs", [], 16),
    ):
        out = tmp_path / f"rep-{data}"
        assert cli.main(["predict", "--data", str(tmp_path / data), "--out", str(out)] + extra + common) == 0
        cfg = json.loads((out / "results.json").read_text())
        text = json.dumps(cfg)
        assert data in text and str(n_rows) in text
        assert (out / "report.md").is_file()
    assert cli.main(["predict", "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")[:-4] + "z.npy",
                     "--out", str(tmp_path / "bad")] + common) != 0  # fmt: skip
    np.save(tmp_path / "short.npy", np.arange(5))
    with pytest.raises(ValueError, match="labels"):
        datasets.load_user_data(tmp_path / "x.npy", tmp_path / "short.npy")
    with pytest.raises(ValueError, match="at least 2 rows"):
        datasets.load_user_data(tmp_path / "short.npy")


def test_version_has_one_source(capsys):
    """pyproject reads the version from statphys_diffusion.__version__; the CLI prints the same."""
    import importlib.metadata

    import statphys_diffusion as sd

    assert importlib.metadata.version("statphys-diffusion") == sd.__version__
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"statphys-diffusion {sd.__version__}"


def test_cli_output_paths_and_grid_sizes_are_checked_first(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["predict", "--data", "gmm1d", "--out", str(blocker / "rep"), "--no-progress"]) == 2
    assert "--out" in capsys.readouterr().err
    assert (
        cli.main(["predict", "--data", "gmm1d", "--n-times", "0", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    )
    assert "--n-times" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_damaged_archives_are_reported_as_corrupt_files(tmp_path):
    """A zip member with a flipped byte (bad CRC-32) and a tar.gz cut in half: 'corrupt file', no traceback."""
    zpath, _, tpath, _, _ = _write_all_formats(tmp_path, np.random.default_rng(1))
    raw = bytearray(zpath.read_bytes())
    with zipfile.ZipFile(zpath) as zf:
        info = zf.getinfo("train/cat/0000.png")
    data_at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[data_at + 20] ^= 0xFF  # inside the stored PNG bytes
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt file"):
        datasets.load_cifar10(bad_zip, "train", cache_dir=tmp_path / "c1", progress=False)
    cut = tmp_path / "cut-cifar-10-python.tar.gz"
    cut.write_bytes(tpath.read_bytes()[: tpath.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt file"):
        datasets.load_cifar10(cut, "train", cache_dir=tmp_path / "c2", progress=False)


def test_nested_subsets_grow_by_adding_images(tmp_path):
    z = tmp_path / "nest.zip"
    _write_zip(z, n_per_class=6, classes=("cat", "dog", "frog"))  # 18 training images, all distinct
    kw = {"cache_dir": tmp_path / "cache", "size": 4, "progress": False, "seed": 3}
    rows = lambda ds: {im.tobytes() for im in ds.images}  # noqa: E731
    sets = [rows(datasets.load_cifar10(z, n=n, nested=True, **kw)) for n in (2, 5, 11, 18)]
    assert [len(s) for s in sets] == [2, 5, 11, 18]
    assert all(a < b for a, b in zip(sets[:-1], sets[1:]))
    # the default draws each subset afresh: the same rule as before the option existed
    default = datasets.load_cifar10(z, n=5, **kw)
    full = datasets.load_cifar10(z, **kw)
    idx = np.sort(np.random.default_rng(3).choice(18, 5, replace=False))
    np.testing.assert_array_equal(default.images, full.images[idx])


def test_nested_runs_have_their_own_hash_and_earlier_hashes_are_kept():
    pytest.importorskip("torch")
    from statphys_diffusion.nets import TrainConfig
    from statphys_diffusion.nets.run import run_key, run_name

    kw = {"size": 16, "n": 8, "config": "tiny", "train_config": TrainConfig()}
    assert "nested" not in run_key(**kw) and run_key(**kw) == run_key(nested=False, **kw)
    assert run_name(nested=True, **kw) != run_name(**kw)


def test_image_flattening_orders_against_explicit_indexing():
    """flatten_images: "hwc" puts pixel (i, j) channel c at (i W + j) C + c, "chw" at (c H + i) W + j
    (checked by explicit indexing); network_layout is the (N, C, H, W) batch; all in [-1, 1]."""
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(3, 4, 5, 2), dtype=np.uint8)
    n, h, w, c = imgs.shape
    hwc, chw = datasets.flatten_images(imgs, "hwc"), datasets.flatten_images(imgs, "chw")
    for k, i, j, ch in [(0, 0, 0, 0), (1, 2, 3, 1), (2, 3, 4, 1), (2, 1, 0, 0)]:
        v = imgs[k, i, j, ch] / 127.5 - 1.0
        assert hwc[k, (i * w + j) * c + ch] == v and chw[k, (ch * h + i) * w + j] == v
    assert hwc.min() >= -1 and hwc.max() <= 1 and hwc.dtype == np.float64
    batch = datasets.network_layout(imgs)
    assert batch.shape == (n, c, h, w) and batch.dtype == np.float32
    # the same values computed in float32: equal to float32 rounding (2^-23 relative)
    np.testing.assert_allclose(batch.reshape(n, -1), chw, rtol=2e-7, atol=2e-7)
    ds = datasets.ImageDataset(imgs, np.zeros(n, dtype=np.int64), ("a",), "test")
    # the default layout is the torch networks' (C, H, W) order
    np.testing.assert_array_equal(ds.as_points(), chw)
    np.testing.assert_array_equal(ds.as_points(order="hwc"), hwc)
    with pytest.raises(ValueError, match="order must be one of"):
        datasets.flatten_images(imgs, "whc")
    with pytest.raises(ValueError, match="shape"):
        datasets.flatten_images(imgs[0])


def test_predict_says_what_n_it_used_and_refuses_more_than_the_data_holds(tmp_path, capsys):
    """Issue 32 bug 8: --n above the rows left after the held-out queries is refused by name (it ran
    silently with fewer); the points used are stated (100 rows, 64 queries: N = 36)."""
    x = np.random.default_rng(0).standard_normal((100, 3))
    np.save(tmp_path / "x.npy", x)
    common = ["--data", str(tmp_path / "x.npy"), "--n-times", "3", "--sb-points", "0", "--info-draws", "0"]
    assert cli.main(["predict", *common, "--n", "50", "--no-progress", "--out", str(tmp_path / "a")]) == 2
    assert "--n 50 exceeds the 36 rows left for training after --n-query 64" in capsys.readouterr().err
    assert cli.main(["predict", *common, "--no-progress", "--out", str(tmp_path / "b")]) == 0
    assert "N = 36 training points of dimension 3, 64 held-out queries" in capsys.readouterr().err
