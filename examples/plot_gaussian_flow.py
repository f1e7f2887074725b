"""
The closed-form probability flow of a Gaussian
==============================================

For Gaussian data the probability-flow ODE decouples into eigenmodes (Wang & Vastola 2023). The map
``GaussianFlow.transport`` against Heun's method on the exact Gaussian score: the numerical solution
converges to the closed form at second order.
"""

import matplotlib.pyplot as plt
import numpy as np

import statphys_diffusion as sd

rng = np.random.default_rng(0)
data = rng.standard_normal((500, 4)) @ np.diag([2.0, 1.0, 0.5, 0.1])
flow = sd.GaussianFlow.fit(data)
x = rng.standard_normal((20, 4))
exact = flow.transport(x, 3.0, 0.05)
steps = np.array([10, 20, 40, 80, 160])
err = [
    np.abs(sd.Heun(times=np.linspace(3.0, 0.05, n + 1)).sample(flow.model(), x_init=x).x - exact).max() for n in steps
]
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(steps, err, "o-", label="Heun against the closed form")
ax.loglog(steps, err[0] * (steps / steps[0]) ** -2.0, "--", color="0.5", label="slope -2")
ax.set_xlabel("steps")
ax.set_ylabel("max error")
ax.legend()
