"""validation/ scripts run end to end in --quick mode (pipeline and outputs, not the science)."""

import csv
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "validation" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sampler_convergence_quick(tmp_path):
    rows = _load("sampler_convergence").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "sampler_convergence.png").is_file()
    table = list(csv.DictReader(open(tmp_path / "sampler_convergence.csv")))
    assert len(table) == len(rows) == 4 * 2 * 2
    assert all(float(r["sw1_mean"]) > 0 for r in table)
