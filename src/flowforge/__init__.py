"""flowforge: normalizing flows for PyTorch, from the course notebook's RealNVP onwards.

The names a user needs sit here, the notebook's among them, so its cells run with
``from flowforge import *``::

    from flowforge import *
    model = NormalizingFlow(
        Multivariate(2),
        Split(), AffineCoupling(block(1, 1, 16)), Swap(), AffineCoupling(block(1, 1, 16)), Merge(),
    )

Everything else lives in a namespace:

- ``flowforge.layers``: every invertible layer (``MaskedAutoregressive``, ``ActNorm``,
  ``LULinear``, the image layers, ...);
- ``flowforge.transformers``: the elementwise maps a coupling or autoregressive layer
  applies (affine, additive, rational-quadratic spline) and the affine log-scales;
- ``flowforge.nets``: conditioner networks (``MLP``, ``MADE``, ``ConvNet``);
- ``flowforge.distributions``: base distributions (``Multivariate``, ``GaussianMixture``);
- ``flowforge.families``: the builders, each family declared once (``FAMILIES``);
- ``flowforge.training``: ``fit``, ``train``, ``Recipe``, the optimizer and the fast path,
  distributed training;
- ``flowforge.check``, ``flowforge.evaluate``, ``flowforge.conditional``,
  ``flowforge.dequantization``, ``flowforge.errors``;
- ``flowforge.workbench``: the command line, run folders, data sets and their true
  densities, scoring, figures, baselines and comparisons (needs the ``workbench`` extra).

``import flowforge`` needs only torch and numpy: the workbench's names here (the plot
helpers, ``load``, ``two_moons``) are imported on first use, and torch is imported
without the tqdm it would load for ``torch.hub`` (``flowforge.torch_import``).
"""

from flowforge import torch_import  # noqa: F401  (first: imports torch, without tqdm)
from flowforge.check import check_flow, isclose, log_det_jacobian, test_flow_layer
from flowforge.device import detect_device
from flowforge.distributions import Multivariate
from flowforge.evaluate import mean_nll
from flowforge.families import iaf, maf, multiscale, nice, nsf, realnvp
from flowforge.flow import NormalizingFlow
from flowforge.layers import (
    AdditiveCoupling,
    AffineCoupling,
    FlowLayer,
    Merge,
    Scale,
    SequentialFlow,
    SplineCoupling,
    Split,
    Swap,
    Translate,
)
from flowforge.nets import block
from flowforge.training import Recipe, fit, train
from flowforge.values import num_samples, scalar_to_vector
from flowforge.version import __version__ as __version__

# The workbench's names, imported on first use so that ``import flowforge`` needs none
# of matplotlib, scikit-learn, safetensors or tqdm: name -> module that defines it.
_LAZY = {
    "load": "flowforge.workbench.runs.config",
    "two_moons": "flowforge.workbench.data.moons",
    "part_model": "flowforge.workbench.figures.plots",
    "plot_inverse_samples": "flowforge.workbench.figures.plots",
    "plot_log_prob": "flowforge.workbench.figures.plots",
    "plot_log_prob_and_samples": "flowforge.workbench.figures.plots",
    "plot_model_steps": "flowforge.workbench.figures.plots",
    "plot_samples": "flowforge.workbench.figures.plots",
    "plot_samples_on_data": "flowforge.workbench.figures.plots",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'flowforge' has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(_LAZY[name])
    except ImportError as error:  # the workbench extra is not installed
        return _needs_workbench(name, error)
    value = getattr(module, name)
    globals()[name] = value
    return value


def _needs_workbench(name: str, error: ImportError):
    """A stand-in for a workbench name whose dependencies are missing: ``from flowforge
    import *`` still works, and calling it says what to install."""

    def missing(*args, **kwargs):
        raise ImportError(
            f"flowforge.{name} needs the workbench extra ({error.name or error} is not "
            "installed): pip install 'flowforge[workbench]'"
        )

    missing.__name__ = missing.__qualname__ = name
    return missing


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "FlowLayer",
    "Merge",
    "Multivariate",
    "NormalizingFlow",
    "Recipe",
    "Scale",
    "SequentialFlow",
    "SplineCoupling",
    "Split",
    "Swap",
    "Translate",
    "block",
    "check_flow",
    "detect_device",
    "fit",
    "iaf",
    "isclose",
    "load",
    "log_det_jacobian",
    "maf",
    "mean_nll",
    "multiscale",
    "nice",
    "nsf",
    "num_samples",
    "part_model",
    "plot_inverse_samples",
    "plot_log_prob",
    "plot_log_prob_and_samples",
    "plot_model_steps",
    "plot_samples",
    "plot_samples_on_data",
    "realnvp",
    "scalar_to_vector",
    "test_flow_layer",
    "train",
    "two_moons",
]
