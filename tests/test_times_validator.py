"""The one time-grid validator (``_checks.check_times``) and the public functions that use it."""

import numpy as np
import pytest

import statphys_diffusion as sd
from statphys_diffusion import _checks
from statphys_diffusion.samplers import DDIM


@pytest.fixture
def ou():
    return sd.OrnsteinUhlenbeck()


def test_scalar_becomes_one_time_and_arrays_pass_through(ou):
    np.testing.assert_array_equal(_checks.check_times(0.5, ou), [0.5])
    grid = np.array([0.1, 0.3, 2.0])
    out = _checks.check_times(grid, ou, order="increasing")
    np.testing.assert_array_equal(out, grid)
    assert out.dtype == np.float64 and out.shape == (3,)
    np.testing.assert_array_equal(_checks.check_times(grid[::-1], ou, order="decreasing"), grid[::-1])


@pytest.mark.parametrize(
    "times, kwargs, match",
    [
        (0.5, {"scalar": False}, "1-D array"),
        (np.ones((2, 2)), {}, "shape"),
        ([], {}, "at least 1 time"),
        ([0.1, 0.2], {"min_size": 3}, "at least 3 times"),
        ([0.1, np.nan], {}, "NaN or inf"),
        ([0.1, np.inf], {}, "NaN or inf"),
        ([0.2, 0.1], {"order": "increasing"}, "strictly increasing"),
        ([0.1, 0.1], {"order": "increasing"}, "strictly increasing"),
        ([0.1, 0.2], {"order": "decreasing"}, "strictly decreasing"),
        ([0.1, -0.2], {}, "outside the schedule's range"),
        ([0.0, 0.2], {"allow_zero": False}, "must be >"),
        ([0.1], {"order": "up"}, "order must be one of"),
    ],
)
def test_refusals_name_the_argument_and_the_constraint(ou, times, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _checks.check_times(times, ou, **kwargs)


def test_without_a_schedule_only_finiteness_and_sign_are_checked():
    np.testing.assert_array_equal(_checks.check_times([-3.0, 7.0]), [-3.0, 7.0])
    with pytest.raises(ValueError, match="positive"):
        _checks.check_times([0.0, 1.0], allow_zero=False)


def test_positive_alpha_refuses_the_end_of_a_finite_horizon_schedule():
    ve = sd.VarianceExploding()
    # alpha = 1 everywhere for VE: always accepted
    _checks.check_times([0.5, 1.0], ve, positive_alpha=True)

    class _ZeroAlphaAtEnd(sd.OrnsteinUhlenbeck):
        def alpha(self, t):
            return np.where(np.asarray(t) >= 1.0, 0.0, super().alpha(t))

    with pytest.raises(ValueError, match="alpha_t = 0"):
        _checks.check_times([0.5, 1.0], _ZeroAlphaAtEnd(), positive_alpha=True)


def _mixture():
    return sd.GaussianMixture(np.array([[-1.0], [1.0]]), 0.1, covariance_type="isotropic", labels=[0, 1])


@pytest.mark.parametrize(
    "call",
    [
        lambda m: sd.entropy_rate(m, [0.5, 0.2], n=16, rng=0),  # not increasing
        lambda m: sd.entropy_rate(m, [0.2, np.nan], n=16, rng=0),
        lambda m: sd.posterior_collapse(sd.EmpiricalDistribution(m.means), [0.2, -1.0], n=4, rng=0),
        lambda m: sd.geometric_memorization(n_points=10, variances=[1.0], times=[np.nan]),
        lambda m: sd.track_central_fixed_point(m, [0.2, 0.5]),  # not decreasing
        lambda m: sd.critical_start([0.1, 0.3, 0.2], [1.0, 2.0, 3.0]),
        lambda m: DDIM(times=[0.1, 0.5]).sample(m, n=4, rng=0),
    ],
)
def test_public_functions_refuse_bad_grids_by_name(call):
    with pytest.raises(ValueError, match="times"):
        call(_mixture())
