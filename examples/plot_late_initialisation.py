"""
Gaussian late initialisation
============================

The early reverse dynamics is linear (Raya & Ambrogioni 2023): a sampler can start late from the
Gaussian the linear phase would have produced. The distance to the data of a 10-step DDIM run
against its start time, for a two-cluster 2-D mixture, with the symmetry-breaking time of the reverse
SDE and the critical start that the second-difference rule reads off the curve.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

gm = sd.GaussianMixture.isotropic([[-1.5, 0.0], [1.5, 0.0]], 0.05)
reference = gm.sample(2000, 0.0, rng=1).x0


def quality(x):
    return sd.sliced_wasserstein(x, reference, n_projections=32, rng=0)


scan = sd.late_start_scan(gm, sd.DDIM(10), np.geomspace(0.1, 3.0, 9), quality, n=500, rng=0)
fig, ax = plt.subplots(figsize=(6, 3.5))
scan.plot(ax=ax, label="sliced W1 to the data")
ax.axvline(sd.symmetry_breaking_time(gm).time, color="C3", ls=":", label="symmetry breaking")
ax.set_xscale("log")
ax.legend(fontsize=7)
fig.tight_layout()
