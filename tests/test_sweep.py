"""The sweep engine: local, process pool and Dask runs agree; cached jobs are not recomputed."""

import json
import os

import numpy as np
import pytest

import statphys_diffusion as sd


def square(config):
    return {"y": config["x"] ** 2, "pid": os.getpid()}


def counting(config):
    """Appends to a log file so that the test can count the calls."""
    with open(config["log"], "a") as fh:
        fh.write(f"{config['x']}\n")
    if config["x"] == config.get("fail_at"):
        raise RuntimeError("killed")
    return config["x"] * 10


def test_config_hash_is_order_free_and_rejects_non_json():
    assert sd.config_hash({"a": 1, "b": [1, 2]}) == sd.config_hash({"b": [1, 2], "a": 1})
    assert sd.config_hash({"a": 1}) != sd.config_hash({"a": 2})
    with pytest.raises(ValueError, match="JSON"):
        sd.config_hash({"a": np.float64("nan")})
    with pytest.raises(ValueError, match="JSON"):
        sd.config_hash({"a": object()})


def test_local_and_process_pool_give_the_same_results_in_order():
    configs = [{"x": x} for x in range(7)]
    one = sd.run_sweep(square, configs, progress=False)
    pool = sd.run_sweep(square, configs, workers=2, progress=False)
    assert [r["y"] for r in one] == [x * x for x in range(7)] == [r["y"] for r in pool]
    assert {r["pid"] for r in one} == {os.getpid()}
    assert os.getpid() not in {r["pid"] for r in pool}


def test_a_killed_sweep_resumes_without_redoing_finished_jobs(tmp_path):
    log = tmp_path / "calls.txt"
    configs = [{"x": x, "log": str(log)} for x in range(5)]
    bad = [dict(c, fail_at=3) for c in configs]
    with pytest.raises(RuntimeError, match="killed"):
        sd.run_sweep(counting, bad, cache_dir=tmp_path / "cache", progress=False)
    # the failed sweep's configs differ (fail_at): the finished ones are cached under their own hash
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3
    log.write_text("")
    res = sd.run_sweep(counting, configs, cache_dir=tmp_path / "cache2", progress=False)
    assert res == [0, 10, 20, 30, 40]
    log.write_text("")
    again = sd.run_sweep(counting, configs, cache_dir=tmp_path / "cache2", progress=False)
    assert again == res and log.read_text() == ""  # nothing recomputed
    stored = json.loads(next((tmp_path / "cache2").glob("*.json")).read_text())
    assert set(stored) == {"config", "result"}


def test_dask_local_cluster_runs_the_same_sweep():
    distributed = pytest.importorskip("distributed")
    configs = [{"x": x} for x in range(6)]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            res = sd.run_sweep(square, configs, scheduler=client, progress=False)
            by_address = sd.run_sweep(square, configs, scheduler=cl.scheduler_address, progress=False)
    assert [r["y"] for r in res] == [x * x for x in range(6)] == [r["y"] for r in by_address]


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers"):
        sd.run_sweep(square, [{"x": 1}], workers=0)
    with pytest.raises(ValueError, match="callable"):
        sd.run_sweep(3, [{"x": 1}])
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="scheduler"):
        sd.run_sweep(square, [{"x": 1}], scheduler=42, progress=False)


def _double(cfg):
    return 2 * cfg["x"]


def _triple(cfg):
    return 3 * cfg["x"]


def test_the_cache_key_includes_the_function_and_numpy_results_round_trip(tmp_path):
    """Two functions with the same configuration do not share a cached result; numpy arrays and
    scalars come back from the cache with their dtype and shape."""
    cfgs = [{"x": 1}, {"x": 2}]
    assert sd.run_sweep(_double, cfgs, cache_dir=tmp_path, progress=False) == [2, 4]
    assert sd.run_sweep(_triple, cfgs, cache_dir=tmp_path, progress=False) == [3, 6]

    def arrays(cfg):
        return {"a": np.arange(cfg["x"] * 3, dtype=np.float32).reshape(cfg["x"], 3), "s": np.int64(cfg["x"])}

    first = sd.run_sweep(arrays, cfgs, cache_dir=tmp_path / "np", progress=False)
    again = sd.run_sweep(arrays, cfgs, cache_dir=tmp_path / "np", progress=False)  # from the cache
    for a, b in zip(first, again):
        assert b["a"].dtype == np.float32 and b["a"].shape == a["a"].shape and np.array_equal(a["a"], b["a"])
        assert b["s"] == a["s"]


def test_errors_collect_keeps_going_and_does_not_cache_the_failure(tmp_path):
    def flaky(cfg):
        if cfg["x"] == 2:
            raise RuntimeError("boom")
        return cfg["x"]

    out = sd.run_sweep(flaky, [{"x": 1}, {"x": 2}, {"x": 3}], cache_dir=tmp_path, progress=False, errors="collect")
    assert out[0] == 1 and out[2] == 3 and isinstance(out[1], sd.sweep.JobError) and "boom" in repr(out[1])
    assert len(list(tmp_path.glob("*.json"))) == 2
    with pytest.raises(RuntimeError, match="boom"):
        sd.run_sweep(flaky, [{"x": 2}], progress=False)
    with pytest.raises(ValueError, match="errors"):
        sd.run_sweep(flaky, [{"x": 1}], errors="ignore")


_TORCH_JOB = """
import torch


def matmul(config):
    torch.set_num_threads(2)
    a = torch.ones(200, 200) * config["x"]
    return float((a @ a)[0, 0])
"""

_DRIVER = """

import torch

import statphys_diffusion as sd
import torch_job

if __name__ == "__main__":
    torch.set_num_threads(2)
    a = torch.randn(300, 300)
    (a @ a).sum()  # the parent has run an OpenMP parallel region before the pool starts
    res = sd.run_sweep(torch_job.matmul, [{"x": x} for x in range(4)], workers=2, progress=False)
    print(res)
"""


def test_process_pool_after_torch_in_the_parent_does_not_hang(tmp_path):
    """A forked child of a process that has used torch's OpenMP pool waits forever; the pool spawns.

    Run in a subprocess with a time limit: with ``fork`` this reproducibly times out.
    """
    pytest.importorskip("torch")
    import subprocess
    import sys

    (tmp_path / "torch_job.py").write_text(_TORCH_JOB)
    (tmp_path / "driver.py").write_text(_DRIVER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py")], capture_output=True, text=True, timeout=180, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([200.0 * x * x for x in range(4)])


def _load(path, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cache_is_keyed_on_the_functions_code_and_on_named_files(tmp_path, capsys):
    """Issue 32 bug 7: editing the function, or a data file named in the configuration, recomputes;
    an unchanged file (even rewritten) is a cache hit; the run says how many jobs came from the cache."""
    src = tmp_path / "job.py"
    data = tmp_path / "data.txt"
    data.write_text("1.5")
    cache = tmp_path / "cache"
    cfgs = [{"x": 2, "data": str(data)}, {"x": 3, "data": str(data)}]
    src.write_text("def job(cfg):\n    return cfg['x'] * float(open(cfg['data']).read())\n")
    assert sd.run_sweep(_load(src, "job_a").job, cfgs, cache_dir=cache, progress=False) == [3.0, 4.5]
    # the same code again: from the cache, and said so
    assert sd.run_sweep(_load(src, "job_a").job, cfgs, cache_dir=cache, progress=True) == [3.0, 4.5]
    assert "2 of 2 jobs from cache" in capsys.readouterr().err
    # the function's code changed (same name): recomputed, not the stale result
    src.write_text("def job(cfg):\n    return cfg['x'] * float(open(cfg['data']).read()) + 100\n")
    assert sd.run_sweep(_load(src, "job_a").job, cfgs, cache_dir=cache, progress=False) == [103.0, 104.5]
    # the data file changed in place: recomputed
    data.write_text("2.0")
    assert sd.run_sweep(_load(src, "job_a").job, cfgs, cache_dir=cache, progress=True) == [104.0, 106.0]
    assert "0 of 2 jobs from cache" in capsys.readouterr().err
    # rewritten with the same content (new modification time): still a cache hit
    data.write_text("2.0")
    sd.run_sweep(_load(src, "job_a").job, cfgs, cache_dir=cache, progress=True)
    assert "2 of 2 jobs from cache" in capsys.readouterr().err


def test_a_script_edited_while_its_sweep_runs_is_refused_not_silently_recomputed(tmp_path):
    """A line inserted above the job function after it was imported shifts the file under its code object:
    the source read back is other code, whose hash would name no cached job (the generalisation run that
    recomputed 213 finished jobs). The sweep refuses by name; the module imported again hits the cache."""
    src = tmp_path / "edited.py"
    cache = tmp_path / "cache"
    src.write_text("import math\n\n\ndef job(cfg):\n    return cfg['x'] + 1\n")
    module = _load(src, "edited_a")
    assert sd.run_sweep(module.job, [{"x": 1}], cache_dir=cache, progress=False) == [2]
    src.write_text("import math\nimport os\n\n\ndef job(cfg):\n    return cfg['x'] + 1\n")
    with pytest.raises(RuntimeError, match="'job'.*changed since it was imported"):
        sd.run_sweep(module.job, [{"x": 1}], cache_dir=cache, progress=False)
    # the same function body imported again from the edited file: the same key as before the edit
    before = next(cache.glob("*.json")).read_text()
    sd.run_sweep(_load(src, "edited_a").job, [{"x": 1}], cache_dir=cache, progress=False)
    assert [p.read_text() for p in cache.glob("*.json")] == [before]


def test_a_function_compiled_from_a_documentation_page_is_keyed_as_before(tmp_path):
    """Code run from a page (the README test compiles each block with the page as its file name) has no
    def line at its line number in that file: no refusal there, the key is stable between runs."""
    page = tmp_path / "page.md"
    page.write_text("# A page\n\nSome prose, then a block:\n\n    def job(cfg):\n        return cfg['x']\n")
    scope: dict = {}
    exec(compile("def job(cfg):\n    return cfg['x']\n", str(page), "exec"), scope)
    cache = tmp_path / "cache"
    assert sd.run_sweep(scope["job"], [{"x": 3}], cache_dir=cache, progress=False) == [3]
    assert sd.run_sweep(scope["job"], [{"x": 3}], cache_dir=cache, progress=False) == [3]
    assert len(list(cache.glob("*.json"))) == 1
