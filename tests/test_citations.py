"""sd.cite(): the package's entry and the papers behind what this process used, nothing else."""

import subprocess
import sys


def test_cite_lists_the_papers_of_the_functions_used_in_this_process():
    script = (
        "import numpy as np, statphys_diffusion as sd\n"
        "gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.05, labels=[0, 1])\n"
        "before = sd.cite()\n"
        "sd.DDIM(5).sample(gm, n=10, rng=0)\n"
        "sd.entropy_rate(gm, [0.3, 0.6, 1.0], n=200, rng=0)\n"
        "after = sd.cite()\n"
        "print(int('@' in before.split('}')[-1]), '|', after)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True).stdout
    flag, text = out.split("|", 1)
    assert flag.strip() == "0"  # nothing but the package's entry before any call
    assert "@software{statphys_diffusion" in text
    assert "@inproceedings{song2021ddim" in text and "@article{handke2025" in text
    assert "kamb2024" not in text and "raya2023" not in text


def test_every_entry_is_well_formed():
    import statphys_diffusion as sd

    text = sd.cite(every=True)
    entries = [e for e in text.split("\n\n") if e.strip()]
    assert len(entries) == 19  # the package and 18 papers
    for e in entries:
        assert e.count("{") == e.count("}") and "title = {" in e and "year = {" in e or "version = {" in e
