"""A GAN as the course's previous assignment builds it: MLPs, non-saturating loss, Adam."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from flowforge.nets import MLP
from flowforge.workbench.baselines.base import Baseline, check_fit_data, seeded


class GANBaseline(Baseline):
    """Generator ``G: N(0, I_latent) -> R^d`` and discriminator ``D: R^d -> logit``, both MLPs.

    Each step trains ``D`` on a batch of data and a batch of ``G``'s samples (binary
    cross-entropy), then ``G`` with the non-saturating loss ``−log D(G(z))``; both by
    Adam (``lr=2e-4, betas=(0.5, 0.999)``, the usual DCGAN setting; at ``1e-3`` the
    two players oscillate and where training stops decides the result). Everything
    random is drawn from generators seeded by ``seed``. A GAN has no likelihood:
    ``surface`` is ``D``'s probability that a point is real. With ``latent`` below the
    data's width, ``G``'s samples lie on a ``latent``-dimensional surface (a curve for
    ``latent=1``). ``validation`` only serves to record ``D``'s accuracy on held-back
    data at the end (a GAN has no validation likelihood to choose by).
    """

    name = "gan"
    has_likelihood = False
    surface_label = "discriminator P(real)"

    def __init__(
        self,
        steps: int = 5000,
        *,
        hidden: int = 64,
        latent: int = 2,
        batch_size: int = 256,
        lr: float = 2e-4,
        seed: int = 0,
    ) -> None:
        if steps < 0 or batch_size < 1 or not lr > 0 or latent < 1:
            raise ValueError(
                f"need steps >= 0, batch_size >= 1, lr > 0, latent >= 1; "
                f"got {steps}, {batch_size}, {lr}, {latent}"
            )
        self.steps, self.hidden, self.latent = steps, hidden, latent
        self.name = "gan" if latent == 2 else f"gan-{latent}d"
        self.batch_size, self.lr, self.seed = batch_size, lr, seed
        self.generator: MLP | None = None
        self.discriminator: MLP | None = None
        self.losses: dict[str, list[float]] = {"discriminator": [], "generator": []}
        self.validation_accuracy = math.nan

    def _build(self, width: int) -> None:
        with seeded(self.seed):
            self.generator = MLP(self.latent, self.hidden, width)
            self.discriminator = MLP(
                width, self.hidden, 1, activation=lambda: torch.nn.LeakyReLU(0.2)
            )

    def fit(self, train: Tensor, validation: Tensor) -> GANBaseline:
        check_fit_data(train, validation)
        x = train.float()
        self._build(x.shape[1])
        g_opt = torch.optim.Adam(self.generator.parameters(), self.lr, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(self.discriminator.parameters(), self.lr, betas=(0.5, 0.999))
        rng = torch.Generator().manual_seed(self.seed)
        for step in range(self.steps):
            real = x[torch.randint(len(x), (self.batch_size,), generator=rng)]
            d_loss = self._discriminator_step(real, d_opt, rng)
            g_loss = self._generator_step(g_opt, rng)
            if step % 100 == 0 or step == self.steps - 1:
                self.losses["discriminator"].append(d_loss)
                self.losses["generator"].append(g_loss)
        self.validation_accuracy = self._accuracy(validation.float())
        return self

    def _latent(self, n: int, rng: torch.Generator) -> Tensor:
        return torch.randn(n, self.latent, generator=rng)

    def _discriminator_step(self, real: Tensor, opt: torch.optim.Optimizer, rng) -> float:
        with torch.no_grad():
            fake = self.generator(self._latent(len(real), rng))
        logits = self.discriminator(torch.cat([real, fake])).squeeze(1)
        labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
        loss = bce(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _generator_step(self, opt: torch.optim.Optimizer, rng) -> float:
        logits = self.discriminator(self.generator(self._latent(self.batch_size, rng)))
        # Non-saturating: maximize log D(G(z)) rather than minimize log(1 - D(G(z))).
        loss = bce(logits.squeeze(1), torch.ones(len(logits)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _fitted(self) -> tuple[MLP, MLP]:
        if self.generator is None or self.discriminator is None:
            raise RuntimeError("call fit() before using the GAN")
        return self.generator, self.discriminator

    def _accuracy(self, real: Tensor) -> float:
        """Share of ``real`` and of as many fresh fakes that ``D`` classifies correctly."""
        fake = self.sample(len(real), seed=self.seed + 1).float()
        with torch.no_grad():
            d = self.surface(torch.cat([real, fake]))
        return float(
            ((d[: len(real)] > 0.5).sum() + (d[len(real) :] <= 0.5).sum()) / (2 * len(real))
        )

    def sample(self, n: int, seed: int = 0) -> Tensor:
        generator, _ = self._fitted()
        z = self._latent(n, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return generator(z).double()

    def surface(self, x: Tensor) -> Tensor:
        _, discriminator = self._fitted()
        with torch.no_grad():
            return torch.sigmoid(discriminator(x.float()).squeeze(1)).double()

    def summary(self) -> dict:
        return {
            "latent": self.latent,
            "steps": self.steps,
            "final_discriminator_loss": self.losses["discriminator"][-1] if self.steps else None,
            "final_generator_loss": self.losses["generator"][-1] if self.steps else None,
            "discriminator_validation_accuracy": self.validation_accuracy,
        }
