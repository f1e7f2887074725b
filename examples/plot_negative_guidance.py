"""
Removing a class with dynamic negative guidance
===============================================

A three-class 1-D mixture. Dynamic negative guidance (Koulischer et al. 2025) follows the exact score
of p_t(x | y != c), s - w (s_c - s) with w = p_t(c | x) / (1 - p_t(c | x)); a constant negative-prompt
scale either leaves the class or distorts the others.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

gm = sd.GaussianMixture.isotropic([[-2.0], [0.0], [2.0]], 0.15, [0.3, 0.4, 0.3], labels=[0, 1, 2])
sampler = sd.DDIM(60)
runs = {
    "no guidance": gm,
    "dynamic negative guidance": sd.DynamicNegativeGuidance(gm, 1),
    "negative prompting, w = 3": sd.NegativePrompting(gm, 1, scale=3.0),
}
fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(-4, 4, 81)
for name, model in runs.items():
    x = sampler.sample(model, n=4000, rng=0).x[:, 0]
    removed = np.mean(np.abs(x) < 1.0)
    outside = np.mean(np.abs(x) > 4.0)
    label = f"{name}: {removed:.1%} near 0, {outside:.1%} beyond +-4"
    # samples beyond +-4 are drawn in the edge bins, so every curve holds all 4,000 samples
    ax.hist(np.clip(x, -4, 4), bins=bins, histtype="step", weights=np.full(x.size, 1 / x.size), label=label)
ax.set_xlabel("x")
ax.set_ylabel("fraction of samples")
fig.tight_layout()
ax.legend(fontsize=7)
