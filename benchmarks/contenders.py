"""The notebook's model in each library measured by ``speed.py``, behind one interface.

Every contender is the seed's RealNVP on two-dimensional data: four affine couplings
that alternate which coordinate they transform, each conditioned by an MLP
``1 -> 16 -> 16 -> 2`` with ReLU (1,352 parameters in all), and a standard normal
base. What differs is each library's own choice, stated in ``note``:

- seed: the notebook's classes (``seed_notebook.py``), scale ``exp(s)``.
- flowforge: ``realnvp()``, scale ``exp(5 tanh(s / 5))`` by default (soft clamp);
  ``flowforge-exp`` is the notebook's plain ``exp(s)``.
- zuko: ``RealNVP``, scale ``exp(s / (1 + |s / log(1e-3)|))`` (a soft clamp).
- nflows: ``AffineCouplingTransform``, scale ``sigmoid(s + 2) + 1e-3`` (bounded).
- normflows: ``AffineCouplingBlock`` with ``scale_map="exp"``, scale ``exp(s)``.

Each contender exposes the differentiable ``log_prob`` its users train with, and its
plain no-gradient ``score``/``sample`` calls (``log_prob`` and ``sample`` under
``torch.no_grad``); ``speed.py`` also cuts those calls into chunks, every library alike.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

import flowforge
import flowforge.evaluate
from benchmarks import seed_notebook

HIDDEN = 16
COUPLINGS = 4


@dataclass
class Contender:
    """One library's version of the model: how to score, sample and train it."""

    name: str
    model: torch.nn.Module
    log_prob: Callable[[Tensor], Tensor]  # differentiable, for training
    score: Callable[[Tensor], Tensor]  # log-likelihood of many points, no gradients
    sample: Callable[[int], Tensor]  # draws, no gradients
    note: str

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _no_grad(fn: Callable) -> Callable:
    def wrapped(*args):
        with torch.no_grad():
            return fn(*args)

    return wrapped


def seed() -> Contender:
    model = seed_notebook.seed_model(HIDDEN)
    return Contender(
        "seed",
        model,
        model.log_prob,
        _no_grad(model.log_prob),
        _no_grad(model.sample),
        "the notebook's classes; scale exp(s)",
    )


def flowforge_flow(model: torch.nn.Module, name: str, note: str) -> Contender:
    """A flowforge ``NormalizingFlow`` as a contender: ``fit``-style training through
    ``log_prob``, chunked ``log_likelihood`` and ``sample_points`` for many points."""
    return Contender(
        name,
        model,
        model.log_prob,
        lambda x: flowforge.evaluate.log_likelihood(model, x),
        lambda n: flowforge.evaluate.sample_points(model, n),
        note,
    )


def flowforge_model(log_scale: str = "soft_clamp") -> Contender:
    """The notebook's model in flowforge, scored and sampled by its plain calls,
    ``model.log_prob(x)`` and ``model.sample(n)`` (which chunk by themselves when no
    gradient is needed)."""
    model = flowforge.realnvp(2, couplings=COUPLINGS, hidden=HIDDEN, log_scale=log_scale)
    name = "flowforge" if log_scale == "soft_clamp" else f"flowforge-{log_scale}"
    note = {
        "soft_clamp": "realnvp(); scale exp(5 tanh(s/5)) (default soft clamp)",
        "exp": "realnvp(log_scale='exp'); scale exp(s), the notebook's",
    }[log_scale]
    return Contender(
        name, model, model.log_prob, _no_grad(model.log_prob), _no_grad(model.sample), note
    )


def zuko_flow(flow: torch.nn.Module, note: str, name: str = "zuko") -> Contender:
    """A zuko ``Flow`` (a module whose call gives the distribution) as a contender."""
    return Contender(
        name,
        flow,
        lambda x: flow().log_prob(x),
        _no_grad(lambda x: flow().log_prob(x)),
        _no_grad(lambda n: flow().sample((n,))),
        note,
    )


def zuko_model() -> Contender:
    import zuko

    flow = zuko.flows.RealNVP(2, transforms=COUPLINGS, hidden_features=(HIDDEN, HIDDEN))
    return zuko_flow(flow, "zuko.flows.RealNVP; scale exp(s/(1+|s/log 1e-3|)) (soft clamp)")


class _NflowsNet(torch.nn.Sequential):
    """The conditioner MLP; nflows passes a context argument (``None`` here)."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(x)


def _nflows_net(in_features: int, out_features: int) -> torch.nn.Module:
    return _NflowsNet(
        torch.nn.Linear(in_features, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, out_features),
    )


def nflows_model() -> Contender:
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import AffineCouplingTransform, CompositeTransform

    masks = [[0, 1], [1, 0]]
    transforms = [
        AffineCouplingTransform(torch.tensor(masks[i % 2]), _nflows_net) for i in range(COUPLINGS)
    ]
    flow = Flow(CompositeTransform(transforms), StandardNormal([2]))
    return Contender(
        "nflows",
        flow,
        flow.log_prob,
        _no_grad(flow.log_prob),
        _no_grad(flow.sample),
        "AffineCouplingTransform; scale sigmoid(s+2)+1e-3 (bounded)",
    )


def normflows_model() -> Contender:
    import normflows as nf

    flows = []
    for i in range(COUPLINGS):
        net = nf.nets.MLP([1, HIDDEN, HIDDEN, 2], init_zeros=False)
        flows.append(nf.flows.AffineCouplingBlock(net, scale=True, scale_map="exp"))
        if i < COUPLINGS - 1:
            flows.append(nf.flows.Permute(2, mode="swap"))
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(2, trainable=False), flows)
    return Contender(
        "normflows",
        model,
        model.log_prob,
        _no_grad(model.log_prob),
        _no_grad(lambda n: model.sample(n)[0]),
        "AffineCouplingBlock(scale_map='exp'); scale exp(s)",
    )


BUILDERS: dict[str, tuple[str | None, Callable[[], Contender]]] = {
    "seed": (None, seed),
    "flowforge": (None, flowforge_model),
    "flowforge-exp": (None, lambda: flowforge_model("exp")),
    "zuko": ("zuko", zuko_model),
    "nflows": ("nflows", nflows_model),
    "normflows": ("normflows", normflows_model),
}


def available(names: list[str]) -> tuple[list[str], list[str]]:
    """The names whose library is installed, and those whose library is missing."""
    present, missing = [], []
    for name in names:
        package = BUILDERS[name][0]
        (present if package is None or importlib.util.find_spec(package) else missing).append(name)
    return present, missing


def build(name: str, seed_value: int = 0) -> Contender:
    """The contender ``name``, its weights initialized after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed_value)
    return BUILDERS[name][1]()
