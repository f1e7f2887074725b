"""The result vocabulary: every tidy result gives plain-dict rows, a DataFrame of them and a compact repr."""

from __future__ import annotations

import numpy as np
import pytest

import statphys_diffusion as sd
from statphys_diffusion._results import TidyResult

OU = sd.OrnsteinUhlenbeck()


def _results():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], [0.2, 0.2], labels=[0, 1], schedule=OU)
    two = sd.EmpiricalDistribution(np.array([[-1.0], [1.0]]), schedule=OU)
    ts = np.geomspace(0.05, 2.0, 8)
    return {
        "EntropyRate": sd.entropy_rate(gm, ts, n=200, rng=0, n_bootstrap=5),
        "EntropyEstimate": sd.conditional_entropy(gm, ts),
        "CentralBranch": sd.central_branch(two, ts),
        "LateStartScan": sd.LateStartScan(ts[:4], np.arange(4.0), np.zeros(4), float(ts[1]), "second_difference"),
        "CovarianceSpectrum": sd.covariance_spectrum(np.random.default_rng(0).normal(size=(40, 3))),
        "CollapseCurve": sd.posterior_collapse(sd.EmpiricalDistribution(np.eye(3)), ts, n=20, rng=1),
    }


@pytest.mark.parametrize("name", list(_results()))
def test_rows_frame_and_repr(name):
    res = _results()[name]
    assert isinstance(res, TidyResult)
    rows = res.to_rows()
    assert isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)
    for r in rows:
        for v in r.values():
            assert isinstance(v, (int, float, str, bool, type(None))), (name, type(v))
    pd = pytest.importorskip("pandas")
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(rows)
    assert list(frame.columns) == list(rows[0])
    text = repr(res)
    assert text.startswith(type(res).__name__ + "(") and len(text) < 800  # arrays shown by shape, not content


def test_entropy_rate_rows_is_a_deprecated_alias():
    res = _results()["EntropyRate"]
    with pytest.warns(DeprecationWarning, match="to_rows"):
        old = res.rows()
    new = res.to_rows()
    assert len(old) == len(new) and [r["t"] for r in old] == [r["t"] for r in new]
