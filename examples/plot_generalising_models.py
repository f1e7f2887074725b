"""
Memorising, local and equivariant denoisers from the same noise
===============================================================

200 smooth 8 x 8 training images. From the same initial noise and the same DDIM grid, the exact
empirical model returns training images, while the local models of Kamb & Ganguli (LS, ELS) compose
new images from training patches; ``sample_agreement`` measures how close each is to the ELS samples
(which stand in for a trained network here).
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

rng = np.random.default_rng(0)
train = np.cumsum(rng.standard_normal((200, 1, 8, 8)), axis=3) / 4
noise = rng.standard_normal((6, 64))
sampler = sd.DDIM(12)
network = sd.EquivariantLocalEmpirical(train, patch_size=3)
models = {
    "empirical": sd.EmpiricalDistribution(train.reshape(200, -1)),
    "LS k=3": sd.LocalEmpirical(train, patch_size=3),
    "ELS k=3": network,
}
fig, axes = plt.subplots(len(models), 6, figsize=(6, 3.2))
for i, (name, model) in enumerate(models.items()):
    agree = sd.sample_agreement(network, model, sampler, noise, n_bootstrap=100, rng=0)
    for j in range(6):
        axes[i, j].imshow(agree.model_samples[j].reshape(8, 8), cmap="gray", vmin=-2, vmax=2)
        axes[i, j].axis("off")
    axes[i, 0].set_title(f"{name}: median r^2 {agree.median:.2f}", fontsize=8, loc="left")
fig.tight_layout()
