"""A faithful copy of the course notebook's flow (the seed), the baseline of the benchmarks.

The classes and ``train`` below are the notebook's cells 10.1-10.5, kept as written
(including ``torch.zeros`` log-determinants on the default device and the
``DataLoader`` over a ``TensorDataset``), so that the benchmark measures the code the
project started from. Only two things differ, both outside the model and the step: ``train`` takes a
``callback`` (after each epoch, so the benchmark can pause its clock and evaluate)
and does not print; the device is the CPU. ``speed.py`` also runs the other
libraries' models through this ``train``: the notebook's recipe, in each library.
"""

from __future__ import annotations

import torch
from torch.distributions import Normal


def num_samples(a):
    if isinstance(a, tuple):
        return num_samples(a[0])
    else:
        return len(a)


class FlowLayer(torch.nn.Module):
    def forward(self, z):
        raise NotImplementedError("Forward function not implemented")

    def inverse(self, z):
        raise NotImplementedError("Inverse function not implemented")


class AffineCoupling(FlowLayer):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, z):
        zA, zB = z
        result = self.block(zA)
        s, t = torch.chunk(result, 2, dim=1)
        zB = torch.exp(s) * zB + t
        log_det = s.sum(dim=1)
        return (zA, zB), log_det

    def inverse(self, z):
        zA, zB = z
        result = self.block(zA)
        s, t = torch.chunk(result, 2, dim=1)
        zB = (zB - t) * torch.exp(-s)
        log_det = -s.sum(dim=1)
        return (zA, zB), log_det


def block(dim_A, dim_B, dim_hidden):
    return torch.nn.Sequential(
        torch.nn.Linear(dim_A, dim_hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(dim_hidden, dim_hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(dim_hidden, 2 * dim_B),
    )


class Split(FlowLayer):
    def forward(self, z):
        split_z = torch.chunk(z, 2, dim=1)
        log_det = torch.zeros(num_samples(z))
        return split_z, log_det

    def inverse(self, z):
        merged_z = torch.cat(z, dim=1)
        log_det = torch.zeros(num_samples(merged_z))
        return merged_z, log_det


class Merge(FlowLayer):
    def forward(self, z):
        return Split().inverse(z)

    def inverse(self, z):
        return Split().forward(z)


class Swap(FlowLayer):
    def forward(self, z):
        z1, z2 = z
        return (z2, z1), torch.zeros(num_samples(z))

    def inverse(self, z):
        return self.forward(z)


class SequentialFlow(FlowLayer):
    def __init__(self, *layers):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)

    def forward(self, z):
        log_det = torch.zeros(num_samples(z))
        for layer in self.layers:
            z, ld = layer.forward(z)
            log_det += ld
        return z, log_det

    def inverse(self, z):
        log_det = torch.zeros(num_samples(z))
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            log_det += ld
        return z, log_det


class Multivariate:
    def __init__(self, width, dist=Normal(0, 1)):  # noqa: B008 (the notebook's default)
        self.width = width
        self.dist = dist

    def sample(self, n=1):
        return self.dist.sample((n, self.width))

    def log_prob(self, x):
        return self.dist.log_prob(x).sum(dim=1)


class NormalizingFlow(torch.nn.Module):
    def __init__(self, base_distribution, *layers):
        super().__init__()
        self.base_distribution = base_distribution
        self.flow = SequentialFlow(*layers)

    def sample(self, n=1):
        z = self.base_distribution.sample(n)
        z, _ = self.flow.forward(z)
        return z

    def log_prob(self, x):
        z, log_det = self.flow.inverse(x)
        return self.base_distribution.log_prob(z) + log_det


def seed_model(dim_hidden: int = 16) -> NormalizingFlow:
    """The notebook's model of section 10.5 (a): 4 affine couplings, hidden width 16."""
    dim_A, dim_B = 1, 1
    return NormalizingFlow(
        Multivariate(2),
        Split(),
        AffineCoupling(block(dim_A, dim_B, dim_hidden)),
        Swap(),
        AffineCoupling(block(dim_A, dim_B, dim_hidden)),
        Swap(),
        AffineCoupling(block(dim_A, dim_B, dim_hidden)),
        Swap(),
        AffineCoupling(block(dim_A, dim_B, dim_hidden)),
        Merge(),
    )


def seed_loader(points: torch.Tensor, batch_size: int = 128) -> torch.utils.data.DataLoader:
    """The notebook's ``moon_data_loader``: (points, labels) pairs, not shuffled."""
    labels = torch.zeros(len(points), dtype=torch.int64)
    dataset = torch.utils.data.TensorDataset(points, labels)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size)


def train(model, data_loader, num_epochs=100, lr=0.001, callback=None):
    """The notebook's ``train`` (section 10.4) on the CPU, without its per-epoch print.

    ``callback(epoch)`` (when given) is called after every epoch; returning ``False``
    stops training. The benchmark uses it to pause its clock and evaluate.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(num_epochs):
        epoch_loss = 0
        mb_count = 0
        for x, _y in data_loader:
            loss = -torch.mean(model.log_prob(x))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item()
            mb_count += 1
        if callback is not None and callback(epoch) is False:
            return
