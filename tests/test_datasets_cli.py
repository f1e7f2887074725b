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
    rows = {r["quantity"]: r for r in csv.DictReader(open(out / "results.csv"))}
    # independent check of t_S for 1-D OU: alpha^2 Lambda = sigma^2 <=> t = 1/2 log(1 + Lambda)
    model, pts, _ = datasets.synthetic_dataset("gmm1d", 300, np.random.default_rng(0))
    lam = np.var(pts[:, 0], ddof=1)
    assert float(rows["speciation_time"]["value"]) == pytest.approx(0.5 * np.log1p(lam), rel=1e-10)
    # labelled data: per-class entropy-rate peaks; the two classes are mirror images, so their
    # peaks agree within the bootstrap errors
    assert "entropy-rate peaks" in text and (out / "figures" / "entropy_rate.png").is_file()
    p0, p1 = rows["entropy_rate_peak_time_class_0"], rows["entropy_rate_peak_time_class_1"]
    # (or within one step of the 6-point grid, which limits the resolution when the s.e. is 0)
    diff = abs(np.log(float(p0["value"]) / float(p1["value"])))
    grid_step = np.log(3.0 / 1e-3) / 5
    assert diff <= max(4 * np.hypot(float(p0["se"]), float(p1["se"])) / float(p0["value"]), grid_step)


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
