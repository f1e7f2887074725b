"""
Collapse onto the training points
=================================

The empirical model of N points memorises: below a collapse time the posterior over training points
concentrates on one of them (Biroli et al. 2024). The posterior entropy of fresh queries against t,
for increasing N, with the annealed prediction of the collapse time.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

rng = np.random.default_rng(0)
fig, ax = plt.subplots(figsize=(6, 3.5))
for n in (50, 500, 5000):
    data = rng.standard_normal((n, 8))
    emp = sd.EmpiricalDistribution(data)
    curve = sd.posterior_collapse(emp, np.geomspace(0.02, 3.0, 15), n=128, rng=1)
    (line,) = ax.plot(curve.times, curve.entropy / np.log(n), "o-", ms=3, label=f"N = {n}")
    ax.axvline(sd.collapse_time(n, np.ones(8)), color=line.get_color(), ls=":")
ax.set_xscale("log")
ax.set_xlabel("t")
ax.set_ylabel("posterior entropy / log N")
ax.legend()
