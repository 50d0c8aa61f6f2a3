"""The docstrings as reference: their examples run, and the public entry points have them.

Every ``Example:`` in the modules below is a doctest; this runs them all (on the CPU,
float32 defaults), and checks that each entry point's docstring has an ``Example:``
section, and an ``Args:`` section when it takes arguments.
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest
import torch

# The examples print CPU tensors: they run on the CPU whatever --device says.
pytestmark = pytest.mark.cpu_only

# The modules whose docstrings hold the entry points' examples.
MODULES = (
    "flowforge.flow",
    "flowforge.distribution",
    "flowforge.check",
    "flowforge.evaluate",
    "flowforge.columns",
    "flowforge.torch_import",
    "flowforge.conditional",
    "flowforge.importance",
    "flowforge.targets",
    "flowforge.targets.base",
    "flowforge.targets.energies",
    "flowforge.targets.shapes",
    "flowforge.targets.hmc",
    "flowforge.targets.sampler",
    "flowforge.targets.logistic",
    "flowforge.distributions.multivariate",
    "flowforge.distributions.mixture",
    "flowforge.layers.base",
    "flowforge.layers.elementwise",
    "flowforge.layers.coupling",
    "flowforge.layers.plumbing",
    "flowforge.layers.autoregressive",
    "flowforge.layers.normalization",
    "flowforge.layers.linear",
    "flowforge.nets.mlp",
    "flowforge.nets.made",
    "flowforge.nets.columns",
    "flowforge.families.realnvp",
    "flowforge.families.nice",
    "flowforge.families.autoregressive",
    "flowforge.families.nsf",
    "flowforge.families.multiscale",
    "flowforge.families.glow",
    "flowforge.training.fit",
    "flowforge.training.train",
    "flowforge.training.recipe",
    "flowforge.training.state",
    "flowforge.integrations.sbi",
    "flowforge.integrations.sklearn",
)

# Modules that need an optional extra: skipped where its library is absent.
OPTIONAL = {"flowforge.integrations.sbi": "sbi", "flowforge.targets.logistic": "sklearn"}

# The public entry points, as "module:qualified name": each docstring has an Example.
ENTRY_POINTS = (
    "flowforge.flow:NormalizingFlow",
    "flowforge.flow:NormalizingFlow.sample",
    "flowforge.flow:NormalizingFlow.log_prob",
    "flowforge.flow:NormalizingFlow.distribution",
    "flowforge.distribution:FlowDistribution",
    "flowforge.distributions.multivariate:Multivariate",
    "flowforge.distributions.mixture:GaussianMixture",
    "flowforge.layers.base:FlowLayer",
    "flowforge.layers.base:SequentialFlow",
    "flowforge.layers.elementwise:Scale",
    "flowforge.layers.elementwise:Translate",
    "flowforge.layers.coupling:AffineCoupling",
    "flowforge.layers.coupling:AdditiveCoupling",
    "flowforge.layers.coupling:SplineCoupling",
    "flowforge.layers.plumbing:Split",
    "flowforge.layers.plumbing:Merge",
    "flowforge.layers.plumbing:Swap",
    "flowforge.layers.autoregressive:MaskedAutoregressive",
    "flowforge.layers.normalization:ActNorm",
    "flowforge.layers.linear:LULinear",
    "flowforge.nets.mlp:block",
    "flowforge.nets.mlp:MLP",
    "flowforge.nets.made:MADE",
    "flowforge.families.realnvp:realnvp",
    "flowforge.families.nice:nice",
    "flowforge.families.autoregressive:maf",
    "flowforge.families.autoregressive:iaf",
    "flowforge.families.nsf:nsf",
    "flowforge.families.multiscale:multiscale",
    "flowforge.families.glow:glow",
    "flowforge.check:check_flow",
    "flowforge.check:test_flow_layer",
    "flowforge.check:log_det_jacobian",
    "flowforge.check:isclose",
    "flowforge.evaluate:mean_nll",
    "flowforge.evaluate:log_likelihood",
    "flowforge.training.fit:fit",
    "flowforge.training.train:train",
    "flowforge.training.recipe:Recipe",
    "flowforge.conditional:Conditioned",
    "flowforge.conditional:label_context",
    "flowforge.integrations.sbi:build_flowforge",
    "flowforge.integrations.sbi:flowforge_flow",
    "flowforge.integrations.sklearn:FlowDensity",
    "flowforge.targets:get",
    "flowforge.importance:diagnose",
    "flowforge.importance:importance_weights",
    "flowforge.targets.hmc:hmc",
)

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _resolve(spec: str) -> object:
    module, _, name = spec.partition(":")
    if module in OPTIONAL:
        pytest.importorskip(OPTIONAL[module])
    value: object = importlib.import_module(module)
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _takes_arguments(value: object) -> bool:
    """Whether a function, or a class's own constructor, takes arguments (a layer that
    keeps ``torch.nn.Module``'s constructor takes none)."""
    target = value.__init__ if inspect.isclass(value) else value
    if target in (torch.nn.Module.__init__, object.__init__):
        return False
    try:
        parameters = list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return False
    return bool([p for p in parameters if p != "self"])


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_run(name: str) -> None:
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    module = importlib.import_module(name)
    dtype, state = torch.get_default_dtype(), torch.random.get_rng_state()
    try:
        torch.set_default_dtype(torch.float32)
        result = doctest.testmod(module, optionflags=OPTIONS, verbose=False)
    finally:
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(state)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} example(s) of {name} failed (see above)"


@pytest.mark.parametrize("spec", ENTRY_POINTS)
def test_every_entry_point_documents_its_arguments_and_has_an_example(spec: str) -> None:
    doc = inspect.getdoc(_resolve(spec)) or ""
    assert "\nExample:\n" in f"\n{doc}", f"{spec}'s docstring has no Example: section"
    assert ">>> " in doc, f"{spec}'s Example has no >>> lines"
    if _takes_arguments(_resolve(spec)):
        assert "\nArgs:\n" in f"\n{doc}", f"{spec}'s docstring has no Args: section"


def test_every_entry_point_s_module_is_run() -> None:
    assert {spec.partition(":")[0] for spec in ENTRY_POINTS} <= set(MODULES)
