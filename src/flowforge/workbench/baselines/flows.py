"""The seed's RealNVP flow as a comparison model, with a normal or a uniform base."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.evaluate import log_likelihood
from flowforge.families import BUILDERS, realnvp
from flowforge.flow import NormalizingFlow
from flowforge.initialize import initialize_from_data
from flowforge.training import fit
from flowforge.training.batches import epoch_generator, tensor_batches
from flowforge.training.optim import adam
from flowforge.workbench.baselines.base import Baseline, check_fit_data, seeded


class FlowBaseline(Baseline):
    """``realnvp(couplings, hidden)`` trained by ``fit`` (Adam, cosine schedule after
    ``warmup`` steps, a weight average of decay ``ema``; 0: none), keeping the weights of
    the epoch with the best validation NLL. The defaults are the plain recipe; the
    comparison trains the notebook's flow by ``flowforge train``'s (``Plan.flow``)."""

    name = "flow"

    def __init__(
        self,
        epochs: int = 20,
        *,
        couplings: int = 4,
        hidden: int = 16,
        batch_size: int = 256,
        lr: float = 5e-3,
        warmup: int = 0,
        ema: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.epochs, self.couplings, self.hidden = epochs, couplings, hidden
        self.batch_size, self.lr, self.seed = batch_size, lr, seed
        self.warmup, self.ema = warmup, ema
        self.model: NormalizingFlow | None = None
        self.history = None

    def fit(self, train: Tensor, validation: Tensor) -> FlowBaseline:
        check_fit_data(train, validation)
        with seeded(self.seed):
            self.model = self._build(train)
        self.history = fit(
            self.model,
            train.float(),
            validation=validation.float(),
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup=self.warmup,
            ema=self.ema,
            seed=self.seed,
            progress=False,
        )
        return self

    def _build(self, train: Tensor) -> NormalizingFlow:
        """A fresh model for ``train`` (``(n, width)``), under the baseline's seed."""
        return realnvp(train.shape[1], couplings=self.couplings, hidden=self.hidden)

    def _fitted(self) -> NormalizingFlow:
        if self.model is None:
            raise RuntimeError(f"call fit() before using the {self.name} model")
        return self.model

    def log_prob(self, x: Tensor) -> Tensor:
        return log_likelihood(self._fitted(), x.float()).double()

    def sample(self, n: int, seed: int = 0) -> Tensor:
        model = self._fitted()
        with seeded(seed), torch.no_grad():
            return model.sample(n).double()

    def _architecture(self) -> dict:
        self._fitted()
        return {"couplings": self.couplings, "hidden": self.hidden, "epochs": self.epochs}

    def summary(self) -> dict:
        return {
            **self._architecture(),
            "epochs": self.history.epochs,
            "recipe": {
                "batch_size": self.batch_size,
                "lr": self.lr,
                "warmup": self.warmup,
                "ema": self.ema,
            },
            "best_epoch": self.history.best_epoch,
            "validation_nll": self.history.heldout_nll,
        }


class BuilderFlowBaseline(FlowBaseline):
    """Any builder in ``flowforge.BUILDERS`` with its options (``nsf``, ``maf``, ...), its
    data-dependent start (``initialize_from_data``: ActNorm, a mixture base) run on the
    training points, then trained like ``FlowBaseline``."""

    def __init__(self, name: str, builder: str, options: dict, epochs: int = 20, **kwargs) -> None:
        super().__init__(epochs, **kwargs)
        self.name, self.builder, self.options = name, builder, dict(options)

    def _build(self, train: Tensor) -> NormalizingFlow:
        model = BUILDERS[self.builder](train.shape[1], **self.options)
        initialize_from_data(model, train.float(), seed=self.seed)
        return model

    def _architecture(self) -> dict:
        self._fitted()
        return {"builder": self.builder, **self.options, "epochs": self.epochs}


class UniformFlowBaseline(FlowBaseline):
    """The same flow on a uniform base, ``U(-3, 3)²``, trained by plain maximum likelihood.

    Its density is zero outside the image of the square, so points there have
    log-likelihood ``-inf``. Training runs the same Adam steps as for the normal base
    (``loss = -log_prob(batch).mean()``, which becomes ``inf``) and records, every
    ``record_every`` steps, the share of the batch outside the support and the mean
    log-determinant: inside the square the base density is flat, so the only gradient
    is the log-determinant's, which spreads the points until they leave the square;
    points outside give no gradient that could bring them back.
    """

    name = "flow-uniform"

    def __init__(self, epochs: int = 2, *, record_every: int = 10, **kwargs) -> None:
        super().__init__(epochs, **kwargs)
        self.record_every = record_every
        self.trace: dict[str, list[float]] = {"step": [], "outside": [], "log_det": [], "loss": []}

    def fit(self, train: Tensor, validation: Tensor) -> UniformFlowBaseline:
        check_fit_data(train, validation)
        with seeded(self.seed):
            self.model = realnvp(
                train.shape[1], couplings=self.couplings, hidden=self.hidden, base="uniform"
            )
        step = 0
        self.initial_outside = self._outside(validation)
        with adam(self.model.parameters(), self.lr) as optimizer:
            for epoch in range(self.epochs):
                order = epoch_generator(self.seed, epoch)
                for x, _ in tensor_batches(train.float(), self.batch_size, generator=order):
                    self._step(x, optimizer, step)
                    step += 1
        self.model.eval()
        self.final_outside = self._outside(validation)
        return self

    def _step(self, x: Tensor, optimizer: torch.optim.Optimizer, step: int) -> None:
        z, log_det = self.model.flow.inverse(x)
        log_p = self.model.base_distribution.log_prob(z) + log_det
        loss = -log_p.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % self.record_every == 0:
            self.trace["step"].append(step)
            self.trace["outside"].append(float(torch.isneginf(log_p).float().mean()))
            self.trace["log_det"].append(float(log_det.detach().mean()))
            self.trace["loss"].append(float(loss.detach()))

    def _outside(self, x: Tensor) -> float:
        return float(torch.isneginf(self.log_prob(x)).double().mean())

    def summary(self) -> dict:
        trace = self.trace
        first = next((s for s, o in zip(trace["step"], trace["outside"]) if o > 0), None)
        nearly_all = next((s for s, o in zip(trace["step"], trace["outside"]) if o >= 0.99), None)
        return {
            **self._architecture(),
            "base": "uniform(-3, 3) per dimension",
            "validation_outside_at_init": self.initial_outside,
            "validation_outside_after_training": self.final_outside,
            "first_recorded_step_with_a_point_outside": first,
            "first_recorded_step_with_99pct_outside": nearly_all,
            "final_mean_log_det": trace["log_det"][-1] if trace["log_det"] else math.nan,
            "log_det_bound": 5.0 * self.couplings * (self.model.width // 2),
            "trace": trace,
        }
