"""
The class posterior along the reverse chain
===========================================

``OnlineClassifier`` generates with DDPM steps and updates p(c | x_n) by Bayes' rule at each step (the
update of dynamic negative guidance). For an exact mixture the tracked posterior follows the exact
p_t(c | x_t); here 20 chains of a two-class 1-D mixture.
"""

import matplotlib.pyplot as plt

import statphys_diffusion as sd

gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.1, labels=[0, 1])
track = sd.OnlineClassifier(200).run(gm, n=20, rng=0)
fig, ax = plt.subplots(figsize=(6, 3.5))
track.plot(ax=ax)
ax.set_xscale("log")
