"""The Examples sections of the public docstrings run as doctests in the default test run.

Floating-point output is compared through the examples themselves (``np.isclose`` with a stated
tolerance, or ``# doctest: +ELLIPSIS`` on the printed digits), so no platform's rounding decides a
test; NORMALIZE_WHITESPACE and ELLIPSIS are on."""

import doctest
import importlib
import pkgutil

import pytest

import statphys_diffusion

SKIP = {"statphys_diffusion.testing"}  # needs hypothesis strategies at import; its examples are the tests


def _modules():
    names = []
    for info in pkgutil.walk_packages(statphys_diffusion.__path__, "statphys_diffusion."):
        if info.name in SKIP or ".nets" in info.name or info.name.split(".")[-1].startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        if test.examples:
            runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed in {name}"
