"""Helpers shared by the tests: the dtypes and device the suite runs in.

``pytest --dtype float64`` (or ``float32``) restricts the dtype-parametrized tests to
one dtype; ``pytest --device cuda`` makes that device torch's default for the library's
tests (``tests/conftest.py`` reads both options and sets ``OPTIONS`` here).
"""

from __future__ import annotations

import pytest
import torch

from flowforge import AffineCoupling, Merge, Multivariate, NormalizingFlow, Split, Swap, block

_NAMES = {"float32": torch.float32, "float64": torch.float64}
OPTIONS = {"dtypes": tuple(_NAMES), "device": "cpu"}


def dtype_params() -> list:
    """``pytest.param`` entries for the dtypes chosen on the command line (both by default)."""
    return [pytest.param(_NAMES[name], id=name) for name in OPTIONS["dtypes"]]


DTYPES = dtype_params()  # filled after conftest has read the options (see pytest_configure)


def seed_model(hidden: int = 16, couplings: int = 4) -> NormalizingFlow:
    """The notebook's model of section 10.5 (a), built from its layers as the notebook does."""
    layers = [Split()]
    for i in range(couplings):
        layers += [AffineCoupling(block(1, 1, hidden))] + ([Swap()] if i < couplings - 1 else [])
    return NormalizingFlow(Multivariate(2), *layers, Merge())
