"""
Your own data
=============

Any (N, d) array is an exact model: ``EmpiricalDistribution`` (what a perfectly trained network learns)
and ``GaussianMixture.fit`` (its Gaussian, or class Gaussians with labels). Here the class posterior of a
labelled point cloud along the forward process: the class decision is lost as noise grows.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

rng = np.random.default_rng(0)
labels = rng.integers(0, 3, 600)
centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
data = centres[labels] + 0.5 * rng.standard_normal((600, 2))
models = {
    "empirical": sd.EmpiricalDistribution(data, labels=labels),
    "class Gaussians": sd.GaussianMixture.fit(data, labels),
}
times = np.geomspace(0.01, 3.0, 25)
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, model in models.items():
    h = sd.conditional_entropy(model, times, n=2000, rng=1)
    h.plot(ax=ax, label=name)
ax.set_xscale("log")
ax.set_ylabel("H(Y | X_t) [nats]")
ax.legend()
