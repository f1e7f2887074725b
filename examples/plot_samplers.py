"""
Samplers against the exact distribution
=======================================

Every sampler runs over any score model. The 1-D Wasserstein distance of 20,000 samples of a
two-component mixture to exact draws, against the number of steps.
"""

import matplotlib.pyplot as plt

import statphys_diffusion as sd

gm = sd.GaussianMixture.isotropic([[-1.0], [1.5]], 0.05, [0.4, 0.6])
exact = gm.sample(20000, 0.0, rng=1).x0[:, 0]
steps = [5, 10, 20, 40, 80]
fig, ax = plt.subplots(figsize=(6, 3.5))
for cls in (sd.DDIM, sd.DDPMAncestral, sd.Heun, sd.EulerMaruyama):
    w1 = [sd.wasserstein_1d(cls(n, spacing="edm").sample(gm, n=20000, rng=0).x[:, 0], exact) for n in steps]
    ax.loglog(steps, w1, "o-", label=cls.__name__)
ax.set_xlabel("steps")
ax.set_ylabel("W1 to exact draws")
ax.legend()
