"""
The entropy rate of a class decision
====================================

H(Y | X_t) of the class of a 1-D Gaussian mixture and its rate of change, per class (Handke et al.
2025): the decision is made at intermediate times and the rate peaks there.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

gm = sd.GaussianMixture.isotropic([[-2.0], [0.0], [2.5]], 0.1, [0.3, 0.3, 0.4], labels=[0, 1, 2])
rate = sd.entropy_rate(gm, np.geomspace(0.02, 3.0, 60), rng=0)
fig, ax = plt.subplots(figsize=(6, 3.5))
rate.plot(ax=ax)
ax.set_xscale("log")
print(rate)
