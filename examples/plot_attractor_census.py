"""
Attractors of the denoiser
==========================

Iterating the denoiser x -> D_t(x) from many starts finds its attractors (Pham et al. 2025): at low
noise every training point is one, and at larger t the basins merge and attractors appear that are
no training point (spurious states).
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

rng = np.random.default_rng(0)
train = rng.standard_normal((12, 2))
emp = sd.EmpiricalDistribution(train)
starts = rng.uniform(-3, 3, (400, 2))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), sharex=True, sharey=True)
for ax, t in zip(axes, (0.1, 0.5)):
    census = sd.attractor_census(emp, starts, t, rng=1)
    census.plot(ax=ax)
    ax.plot(train[:, 0], train[:, 1], "k+", ms=8, label="training points")
    ax.set_title(f"t = {t}: {census.points.shape[0]} attractors", fontsize=9)
