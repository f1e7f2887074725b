"""numba's on-disk cache for the kernels (issue 32): a second process loads the compiled kernel
instead of compiling it; a stale cache (edited source) recompiles instead of crashing or running old
code; two processes compiling into one empty cache at once both finish with the right numbers.

Each test runs a copy of the package in a temporary directory (so its cache starts empty and the
copy's source can be edited) in subprocesses that call the small-d mixture kernel once. Each
compilation costs a process 5-10 s, so these tests are marked slow: .ci/run runs them in its
separate slow selection after the default run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import statphys_diffusion

SCRIPT = r"""
import json, sys, numpy as np
import statphys_diffusion as sd
from statphys_diffusion._kernels import small_d
gm = sd.GaussianMixture.isotropic([[-1.0], [0.5], [2.0]], 0.3)
s = gm.score(np.linspace(-2, 2, 5)[:, None], 0.4)
st = small_d.mixture_small_d.stats
print(json.dumps({"score": s[:, 0].tolist(), "hits": sum(st.cache_hits.values()),
                  "misses": sum(st.cache_misses.values()), "file": small_d.__file__}))
"""


@pytest.fixture
def package_copy(tmp_path):
    src = Path(statphys_diffusion.__file__).parent
    shutil.copytree(src, tmp_path / "statphys_diffusion", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _run(root: Path, *, wait=True):
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "STATPHYS_DIFFUSION_NUMBA_CACHE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return _result(proc) if wait else proc


def _result(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_loads_the_kernel_from_the_cache(package_copy):
    first = _run(package_copy)
    assert first["file"].startswith(str(package_copy))  # the copy, not the installed package
    assert first["misses"] >= 1 and first["hits"] == 0
    assert list((package_copy / "statphys_diffusion" / "_kernels" / "__pycache__").glob("small_d.*.nbi"))
    second = _run(package_copy)
    assert second["hits"] >= 1 and second["misses"] == 0
    assert second["score"] == first["score"]


@pytest.mark.slow
def test_a_stale_cache_recompiles(package_copy):
    first = _run(package_copy)
    kernel = package_copy / "statphys_diffusion" / "_kernels" / "small_d.py"
    kernel.write_text(kernel.read_text() + "\n# edited: the cache index no longer matches this file\n")
    again = _run(package_copy)
    assert again["misses"] >= 1 and again["hits"] == 0
    assert again["score"] == first["score"]


@pytest.mark.slow
def test_two_processes_compiling_at_once_both_finish(package_copy):
    procs = [_run(package_copy, wait=False) for _ in range(2)]
    results = [_result(p) for p in procs]
    assert results[0]["score"] == results[1]["score"]
    third = _run(package_copy)  # and what they left behind is a usable cache
    assert third["hits"] >= 1 and third["score"] == results[0]["score"]
