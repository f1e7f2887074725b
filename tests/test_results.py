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


def test_memorized_fraction_and_trajectory_collapse_are_results_that_unpack_as_before():
    r = np.array([0.1, 0.2, 0.5, 0.9])
    mf = sd.memorized_fraction(r, method="wilson")
    assert isinstance(mf, sd.MemorizedFraction) and mf.value == 0.5 and mf.n == 4
    frac, lo, hi = mf
    assert (frac, lo, hi) == (mf.value, mf.low, mf.high) == (mf[0], mf[1], mf[2])
    # the Wilson interval of 2 of 4 (closed form with z = 1.96)
    z = 1.959963984540054
    centre = (0.5 + z * z / 8) / (1 + z * z / 4)
    half = z * np.sqrt(0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert np.isclose(lo, centre - half) and np.isclose(hi, centre + half)
    assert mf.to_rows()[0]["method"] == "wilson" and "MemorizedFraction(" in repr(mf)
    emp = sd.EmpiricalDistribution(np.array([[-3.0, 0.0], [3.0, 0.0]]))
    ts = np.array([1.0, 0.5, 0.1])
    traj = np.stack(
        [np.array([[0.1, 0.0], [-0.2, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([[2.5, 0.0], [-2.5, 0.0]])]
    )
    tc = sd.trajectory_collapse_times(traj, ts, emp.points, emp.schedule)
    t_c, idx = tc
    assert isinstance(tc, sd.TrajectoryCollapse) and np.array_equal(t_c, tc.t) and idx is tc.nearest_index
    assert [row["final_nearest_index"] for row in tc.to_rows()] == [1, 0]
