"""
Where does a denoiser stand?
============================

``regime_map`` compares a denoiser with exact references on noised training and held-out points. Here
the "network" is the LS model of its training set: with LS among the references the map says
"local"; without it, the same denoiser passes for a memoriser at low noise (it reproduces its own
training images), which is why the references matter.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

rng = np.random.default_rng(0)
train = rng.uniform(-1, 1, (12, 1, 5, 5))
held = rng.uniform(-1, 1, (12, 25))
network = sd.LocalEmpirical(train, patch_size=3)
refs = {
    "empirical": sd.EmpiricalDistribution(train.reshape(12, -1)),
    "gaussian": sd.GaussianMixture.fit(train.reshape(12, -1)),
    "LS k=3": sd.LocalEmpirical(train, patch_size=3),
}
rm = sd.regime_map(
    network, train.reshape(12, -1), held, np.geomspace(0.01, 2.0, 8), references=refs, n_points=12, rng=1
)
fig, ax = plt.subplots(figsize=(6.5, 4))
rm.plot(ax=ax)
print(rm)
