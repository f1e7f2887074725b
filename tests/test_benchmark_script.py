"""The benchmark script runs end to end in --quick mode (pipeline check, not a timing assertion)."""

import csv
import importlib.util
from pathlib import Path


def test_bench_kernels_quick(tmp_path):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kernels.py"
    spec = importlib.util.spec_from_file_location("bench_kernels", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "k.csv"
    rows = mod.main(["--quick", "--repeat", "1", "--out", str(out)])
    assert {r["benchmark"] for r in rows} == {"empirical_score", "small_d_score"}
    table = list(csv.DictReader(open(out)))
    assert len(table) == 4
    # the kernel and its baseline compute the same thing
    for r in table:
        tol = 1e-4 if r["dtype"] == "float32" else 1e-10
        assert float(r["max_abs_diff"]) < tol


def test_bench_training_quick(tmp_path):
    import pytest

    pytest.importorskip("torch")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"
    spec = importlib.util.spec_from_file_location("bench_training", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--quick", "--batch", "4", "--out", str(tmp_path / "t.csv")])
    assert len(rows) == 2 and all(r["images_per_s"] > 0 for r in rows)
    assert rows[1]["ratio_to_reference"] == 1.0
