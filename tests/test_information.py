"""H(Y | X_t): quadrature against Monte Carlo, the limits, data processing, bad input."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd


def _mix1d(sep, w0=0.5, var=0.05):
    return sd.GaussianMixture(
        means=[[-sep], [sep]],
        covariances=[var, var],
        covariance_type="isotropic",
        weights=[w0, 1 - w0],
        labels=[0, 1],
        schedule=sd.OrnsteinUhlenbeck(),
    )


@settings(max_examples=8, deadline=None)
@given(sep=st.floats(0.3, 2.0), w0=st.floats(0.2, 0.8), t=st.floats(0.05, 2.0))
def test_quadrature_matches_monte_carlo(sep, w0, t):
    # independent estimators: adaptive quadrature (error < 1e-9) and plain MC over exact draws;
    # they must agree within 4 standard errors (plus 1e-9 for the quadrature)
    m = _mix1d(sep, w0)
    q = sd.conditional_entropy(m, t)
    # when H is tiny its mass sits in events rarer than 1/n and the MC standard error means nothing
    assume(q.value[0] > 1e-3)
    mc = sd.conditional_entropy(m, t, method="monte_carlo", n=20000, rng=np.random.default_rng(0))
    assert q.method == "quadrature" and mc.method == "monte_carlo"
    assert abs(q.value[0] - mc.value[0]) <= 4 * mc.stderr[0] + 1e-9


def test_limits_and_data_processing():
    m = _mix1d(1.5, 0.3)
    h_y = -(0.3 * np.log(0.3) + 0.7 * np.log(0.7))
    est = sd.conditional_entropy(m, [1e-3, 0.1, 0.5, 1.0, 3.0, 8.0])
    # t -> infinity: X_t independent of Y, so H(Y | X_t) -> H(Y) (8 OU time units: alpha^2 ~ 1e-7)
    assert abs(est.value[-1] - h_y) < 1e-6
    # t -> 0 with classes 30 standard deviations apart: no uncertainty left
    assert est.value[0] < 1e-8
    # data processing: conditioning on a noisier X_t cannot reduce the entropy
    assert np.all(np.diff(est.value) > -1e-10)
    mi = sd.mutual_information(m, [1e-3, 8.0])
    assert abs(mi.value[0] - h_y) < 1e-8 and abs(mi.value[1]) < 1e-6


def test_monte_carlo_in_two_dimensions_common_random_numbers():
    m = sd.GaussianMixture(
        means=[[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]],
        covariances=[0.1, 0.1, 0.1],
        covariance_type="isotropic",
        labels=[0, 1, 2],
        schedule=sd.OrnsteinUhlenbeck(),
    )
    est = sd.conditional_entropy(m, [0.2, 0.4, 0.8, 1.6, 6.0], n=4000, rng=np.random.default_rng(1))
    assert np.all(np.diff(est.value) > 0)  # common random numbers make the curve monotone here
    assert abs(est.value[-1] - np.log(3)) < 4 * est.stderr[-1] + 1e-4
    assert np.all(est.stderr > 0)


def test_bad_input():
    unl = sd.GaussianMixture(
        means=[[0.0], [1.0]], covariances=[1.0, 1.0], covariance_type="isotropic", schedule=sd.OrnsteinUhlenbeck()
    )
    with pytest.raises(ValueError, match="labelled"):
        sd.conditional_entropy(unl, 0.5)
    m = _mix1d(1.0)
    with pytest.raises(ValueError, match="times"):
        sd.conditional_entropy(m, -1.0)
    with pytest.raises(ValueError, match="method"):
        sd.conditional_entropy(m, 0.5, method="simpson")
    m2 = sd.GaussianMixture(
        means=[[0.0, 0.0], [1.0, 1.0]],
        covariances=[1.0, 1.0],
        covariance_type="isotropic",
        labels=[0, 1],
        schedule=sd.OrnsteinUhlenbeck(),
    )
    with pytest.raises(ValueError, match="1-D"):
        sd.conditional_entropy(m2, 0.5, method="quadrature")
