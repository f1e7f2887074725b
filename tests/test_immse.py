"""I-MMSE estimate of I(Y; X_t) (denoisers only) against H(Y) - H(Y | X_t) (exact posterior)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), t=st.floats(0.02, 2.0))
def test_immse_agrees_with_quadrature_on_random_1d_mixtures(seed, t):
    rng = np.random.default_rng(seed)
    m = sd.GaussianMixture.isotropic(
        rng.uniform(-2, 2, (3, 1)), rng.uniform(0.02, 0.4, 3), rng.dirichlet(np.ones(3) * 2), labels=[0, 1, 1]
    )
    exact = sd.mutual_information(m, [t, 3 * t])  # quadrature, error < 1e-9
    im = sd.mutual_information_immse(m, [t, 3 * t], n=3000, rng=rng)
    assert im.method == "immse"
    assert np.all(np.abs(im.value - exact.value) <= 4 * im.stderr + 1e-6)


@pytest.mark.parametrize(
    "schedule", [sd.OrnsteinUhlenbeck(), sd.VPSDE(), sd.DiscreteSchedule.cosine(), sd.FlowMatching()], ids=repr
)
def test_immse_agrees_with_monte_carlo_in_2d_for_every_schedule(schedule):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 2, 2))
    cov = a @ a.transpose(0, 2, 1) / 4 + 0.05 * np.eye(2)
    m = sd.GaussianMixture.full(rng.standard_normal((3, 2)), cov, labels=[0, 1, 2], schedule=schedule)
    ts = [0.05 * schedule.t_max if np.isfinite(schedule.t_max) else 0.1, 0.4 * min(schedule.t_max, 3.0)]
    mc = sd.mutual_information(m, ts, n=20000, rng=rng)
    im = sd.mutual_information_immse(m, ts, n=3000, rng=rng)
    se = np.hypot(mc.stderr, im.stderr)
    assert np.all(np.abs(im.value - mc.value) <= 4 * se)


def test_immse_with_explicit_data_on_an_empirical_model():
    # the data set itself as (x0, y): every draw is a training point, as for a trained network
    rng = np.random.default_rng(2)
    pts = rng.standard_normal((30, 6))
    lab = np.arange(30) % 3
    e = sd.EmpiricalDistribution(pts, labels=lab)
    x0 = np.repeat(pts, 40, axis=0)
    y = np.repeat(lab, 40)
    im = sd.mutual_information_immse(e, [0.05, 0.5, 2.0], data=(x0, y), rng=rng)
    mc = sd.mutual_information(e, [0.05, 0.5, 2.0], n=20000, rng=rng)
    assert np.all(np.abs(im.value - mc.value) <= 4 * np.hypot(im.stderr, mc.stderr))
    assert abs(im.value[0] - np.log(3)) <= 4 * im.stderr[0]  # at small t every point is recognised


def test_bad_input():
    unl = sd.GaussianMixture.isotropic([[0.0], [1.0]], 0.1)
    with pytest.raises(ValueError, match="labelled"):
        sd.mutual_information_immse(unl, 0.5, n=10)
    m = sd.GaussianMixture.isotropic([[0.0], [1.0]], 0.1, labels=[0, 1])
    with pytest.raises(ValueError, match="data"):
        sd.mutual_information_immse(m, 0.5, data=(np.zeros((5, 1)), np.zeros(4)))
    with pytest.raises(ValueError, match="denoise"):
        sd.mutual_information_immse(object(), 0.5)
    with pytest.raises(ValueError, match="times"):
        sd.mutual_information_immse(m, 0.0)
    with pytest.raises(ValueError, match="nodes"):
        sd.mutual_information_immse(m, 0.5, nodes=0)
