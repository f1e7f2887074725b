"""The property-testing helpers on a user's own object (issue 32, bug 6): no private members read,
and a failure names the point, the time and the tolerance."""

import numpy as np
import pytest

pytest.importorskip("hypothesis")

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion import testing  # noqa: E402


class _MyGaussian:
    """N(m, v) in 1-D under the OU schedule, written from the closed form: p_t = N(a m, a^2 v + s^2)."""

    def __init__(self, m=0.3, v=0.5, wrong_at=None):
        self.schedule = sd.OrnsteinUhlenbeck()
        self.m, self.v, self.wrong_at = m, v, wrong_at

    def _moments(self, t):
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return a * self.m, a * a * self.v + s2

    def log_prob(self, x, t):
        mu, var = self._moments(t)
        return -0.5 * ((x[:, 0] - mu) ** 2 / var + np.log(2 * np.pi * var))

    def score(self, x, t):
        mu, var = self._moments(t)
        s = -(x - mu) / var
        if self.wrong_at is not None:
            s = np.where(np.abs(x - self.wrong_at) < 1e-9, 2 * s, s)  # a wrong factor at one point
        return s

    def denoise(self, x, t):
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return (x + s2 * self.score(x, t)) / a


def test_checkers_work_on_a_users_own_object():
    model = _MyGaussian()
    x = np.linspace(-2, 2, 7)[:, None]
    assert testing.check_score(model, x, 0.4) < 1e-6
    assert testing.check_tweedie(model, x, 0.4) < 1e-12
    assert testing.noisy_length(model, 0.4) == pytest.approx(float(np.sqrt(model.schedule.sigma2(0.4))))


def test_a_failure_names_the_point_the_time_and_the_tolerance():
    x = np.linspace(-2, 2, 5)[:, None]
    model = _MyGaussian(wrong_at=x[3, 0])
    with pytest.raises(AssertionError, match=r"at point 3 of 5, x = \[1\.\].*t = 0\.4.*rtol=1e-05"):
        testing.check_score(model, x, 0.4)


def test_an_object_without_the_members_is_refused_by_name():
    with pytest.raises(ValueError, match="`log_prob`"):
        testing.check_score(object(), np.zeros((1, 1)), 0.5, length=1.0)
