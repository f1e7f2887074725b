"""The benchmark script runs end to end in --quick mode (pipeline check, not a timing assertion)."""

import csv
import importlib.util
from pathlib import Path

import pytest


def test_bench_kernels_quick(tmp_path):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kernels.py"
    spec = importlib.util.spec_from_file_location("bench_kernels", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "k.csv"
    rows = mod.main(["--quick", "--repeat", "1", "--out", str(out)])
    kinds = {r["benchmark"] for r in rows}
    assert {"empirical_score", "small_d_score", "empirical_score_collapsed", "empirical_score_t_sweep"} <= kinds
    table = list(csv.DictReader(open(out)))
    assert len(table) == len(rows) >= 7
    # the kernel and its baseline compute the same thing
    for r in table:
        tol = 1e-4 if r["dtype"] == "float32" else 1e-10
        if r.get("max_abs_diff"):
            assert float(r["max_abs_diff"]) < tol
        if r.get("max_abs_diff_sparse_vs_dense"):
            assert float(r["max_abs_diff_sparse_vs_dense"]) < 1e-10
    # the collapsed case is collapsed: at most one weight in 2,000 survives the cut per row, on average
    collapsed = next(r for r in table if r["benchmark"] == "empirical_score_collapsed")
    assert float(collapsed["kept_weight_fraction"]) <= 2 / 2000


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


def _load_bench(name):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_gpu_skips_cleanly_without_a_gpu_and_runs_its_pipeline_quick(tmp_path, capsys):
    import pytest

    torch = pytest.importorskip("torch")
    mod = _load_bench("bench_gpu")
    if not torch.cuda.is_available():
        assert mod.main(["--out", str(tmp_path / "g.csv")]) == []
        assert "no CUDA GPU available; skipped" in capsys.readouterr().out
        assert not (tmp_path / "g.csv").exists()
    rows = mod.main(["--quick", "--out", str(tmp_path / "q.csv")])
    cases = {(r["case"], r["regime"], r["dtype"]) for r in rows}
    for dtype in ("float32", "float64"):
        for regime in ("dense", "collapsed"):
            assert {("empirical score", regime, dtype), ("ELS denoiser", regime, dtype)} <= cases
    assert ("small UNet training", "-", "float32") in cases
    kernels = [r for r in rows if "fraction_of_gemm" in r]
    assert all(0 < r["fraction_of_gemm"] and r["seconds"] > 0 for r in kernels)
    # on the CPU the torch backend and the numba kernel compute the same patch denoiser
    assert all(r["max_abs_diff_vs_cpu"] < (1e-4 if r["dtype"] == "float32" else 1e-10)
               for r in rows if r["case"].endswith("denoiser"))  # fmt: skip


def test_bench_patches_quick(tmp_path):
    """The patch-model benchmark runs, and the kernel and its unfold baseline compute the same denoiser
    (float32: 1e-4 on outputs in [-1, 1])."""
    pytest.importorskip("torch")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_patches.py"
    spec = importlib.util.spec_from_file_location("bench_patches", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--quick", "--repeat", "1", "--out", str(tmp_path / "p.csv")])
    assert {r["model"] for r in rows} == {"ELS", "LS"}
    assert all(r["max_abs_diff"] < 1e-4 for r in rows)
    assert all(r["peak_mib"] > 0 and r["speedup_vs_baseline"] > 0 for r in rows)


# .ci/run runs it in its separate slow selection (two worker processes start: the default run stays short)
@pytest.mark.slow
def test_bench_sharded_quick(tmp_path, capsys):
    pytest.importorskip("distributed")
    mod = _load_bench("bench_sharded")
    rows = mod.main(["--quick", "--repeat", "1", "--out", str(tmp_path / "s.csv")])
    by = {r["mode"]: r for r in rows}
    # the sharded answers are the in-memory ones (float32 scores of size up to ~1 / sigma^2 ~ 3)
    assert by["sharded, this process"]["max_abs_diff"] < 1e-4
    assert by["sharded, Dask LocalCluster"]["max_abs_diff"] < 1e-4
    assert by["sharded, Dask LocalCluster"]["shards_per_worker_max"] >= 2
    assert "ImageNet-64 plan" in capsys.readouterr().out


def test_best_of_is_the_minimum_over_repeats_with_sync_inside_the_timing():
    # a fake clock: each call of fn advances it by the next duration; sync adds a fixed 0.5
    import time as _time

    from statphys_diffusion import _bench

    clock = {"now": 0.0}
    durations = iter([9.0, 3.0, 5.0, 4.0])
    calls = []

    def fn():
        clock["now"] += next(durations)
        calls.append("fn")
        return len(calls)

    def sync():
        clock["now"] += 0.5
        calls.append("sync")

    real = _time.perf_counter
    _time.perf_counter = lambda: clock["now"]
    try:
        best, out = _bench.best_of(fn, 3, warm_up=True, sync=sync)
    finally:
        _time.perf_counter = real
    # the warm-up (9.0) is untimed; timed: 3.5, 5.5, 4.5
    assert best == 3.5
    assert out == 7  # the last call's value: 4 calls of fn and 3 of sync before it returned
    assert calls.count("fn") == 4 and calls.count("sync") == 4
    with pytest.raises(ValueError, match="repeat"):
        _bench.best_of(fn, 0)


def test_bench_flow_likelihood_quick(tmp_path):
    """The flow-likelihood benchmark runs, and its two paths (hvp, vjp) give the same log-likelihoods
    (float32 network: 1e-4 relative)."""
    pytest.importorskip("torch")
    mod = _load_bench("bench_flow_likelihood")
    rows = mod.main(["--quick", "--points", "4", "--probes", "2", "--repeat", "1", "--out", str(tmp_path / "f.csv")])
    assert rows[0]["what"].startswith("flow step, hvp") and rows[0]["ratio_to_baseline"] == 1.0
    assert all(r["seconds"] > 0 for r in rows)
    assert rows[0]["relative_diff_of_paths"] < 1e-4
