"""
Symmetry breaking of two deltas
===============================

Two training points at -1 and +1 under the Ornstein-Uhlenbeck schedule. The central fixed point of
the reverse SDE loses stability when the top Hessian eigenvalue of log p_t reaches -1/2, at
alpha_t^2 = sqrt(2) - 1 (Raya & Ambrogioni 2023); the potential -log p_t turns bimodal later in
reverse time, at alpha_t^2 = 1/2.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

model = sd.EmpiricalDistribution(np.array([[-1.0], [1.0]]))
ts = np.linspace(0.05, 1.5, 40)
fig, ax = plt.subplots(figsize=(6, 3.5))
for t in ts:
    fp = sd.fixed_points_1d(model, float(t), "sde")
    stable = fp.eigenvalues < 0
    ax.plot(np.full(stable.sum(), t), fp.points[stable], "o", ms=3, color="C0")
    ax.plot(np.full((~stable).sum(), t), fp.points[~stable], "o", ms=3, mfc="none", color="C3")
t_c = sd.symmetry_breaking_time(model, "sde").time
ax.axvline(t_c, color="k", ls="--", lw=1, label=f"t = {t_c:.3f}: alpha^2 = {np.exp(-2 * t_c):.4f}")
ax.set_xlabel("t (forward)")
ax.set_ylabel("fixed points of the reverse SDE")
ax.legend()
print("closed form alpha^2 = sqrt(2) - 1 =", np.sqrt(2) - 1, "; measured", np.exp(-2 * t_c))
