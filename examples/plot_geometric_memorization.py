"""
Losing dimensions one by one
============================

Data on a linear manifold with variances 4, 1 and 0.1 along its directions. The fraction of each
direction's variance the empirical model keeps at t -> 0, against the number of training points
(Achilli et al. 2024): directions are lost at different N, set by their local variance.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

variances = np.array([4.0, 1.0, 0.1])
ns = np.geomspace(10, 1e6, 30)
kept = np.array([sd.geometric_memorization(n, variances, 0.0).retained[0] for n in ns])
fig, ax = plt.subplots(figsize=(6, 3.5))
for j, v in enumerate(variances):
    ax.semilogx(ns, kept[:, j], label=f"variance {v:g}")
ax.set_xlabel("training points N")
ax.set_ylabel("variance kept at t -> 0")
ax.legend()
