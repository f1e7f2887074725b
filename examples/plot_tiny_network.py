"""
A small network beside its exact score
======================================

A small MLP denoiser trained for a few seconds on a 2-D mixture, wrapped as a score model, sampled
with the same DDIM sampler as the exact model it approximates.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

import statphys_diffusion as sd
from statphys_diffusion import nets

gm = sd.GaussianMixture.isotropic([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0]], 0.02)
data = gm.sample(2000, 0.0, rng=0).x0
torch.manual_seed(0)
net = nets.MLPDenoiser(2, hidden=64, depth=3)
nets.train(net, data, gm.schedule, nets.TrainConfig(steps=300, batch_size=128, lr=3e-3), progress=False)
model = nets.TorchScoreModel(net, gm.schedule)
noise = sd.initial_noise(gm.schedule, 1500, 2, gm.schedule.default_t_start, np.random.default_rng(1))
fig, axes = plt.subplots(1, 2, figsize=(7, 3.5), sharex=True, sharey=True)
for ax, (name, m) in zip(axes, [("exact", gm), ("network", model)]):
    x = sd.DDIM(40).sample(m, x_init=noise).x  # the same starting noise for both
    ax.plot(x[:, 0], x[:, 1], ".", ms=1)
    ax.set_title(name)
