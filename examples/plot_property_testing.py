"""
Property-testing your own formula
=================================

``statphys_diffusion.testing`` checks a score against central finite differences of its log density,
and Tweedie's relation between score and denoiser, on any object with those methods; a failure names
the point, the time and the tolerance. Here a user's closed-form 1-D Gaussian passes, and a
deliberately wrong score is caught.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd
from statphys_diffusion import testing


class MyGaussian:
    """N(m, v) under the OU schedule: p_t = N(alpha m, alpha^2 v + sigma^2)."""

    def __init__(self, m=0.5, v=0.2, factor=1.0):
        self.schedule, self.m, self.v, self.factor = sd.OrnsteinUhlenbeck(), m, v, factor

    def _moments(self, t):
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return a * self.m, a * a * self.v + s2

    def log_prob(self, x, t):
        mu, var = self._moments(t)
        return -0.5 * ((x[:, 0] - mu) ** 2 / var + np.log(2 * np.pi * var))

    def score(self, x, t):
        mu, var = self._moments(t)
        return -self.factor * (x - mu) / var


x = np.linspace(-2, 2, 9)[:, None]
times = np.geomspace(0.01, 2.0, 12)
errors = [testing.check_score(MyGaussian(), x, t) for t in times]
try:
    testing.check_score(MyGaussian(factor=1.01), x, 0.5)
except AssertionError as err:
    print("caught:", err)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(times, errors, "o-")
ax.set_xlabel("t")
ax.set_ylabel("max relative error of the score")
