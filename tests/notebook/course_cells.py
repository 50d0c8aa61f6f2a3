"""The course notebook's cells, as a student runs them against flowforge.

Every code cell of the notebook, in order, with its number (``[122]`` ...), verbatim,
except that the cells where the student writes the library (``FlowLayer``, ``Scale``,
``AffineCoupling``, ``NormalizingFlow``, ``train``, the plot helpers, ...) keep only
their statements after the definitions: flowforge provides the definitions, through
``from flowforge import *`` added to the first cell. ``FIGURE_CELLS`` are the cells that
draw a figure, each of which must display exactly one image.
"""

from __future__ import annotations

CELLS: list[tuple[str, str]] = [
    (
        "122",
        """%config InlineBackend.figure_formats = ['png']
%matplotlib inline

import itertools
import numpy as np
import matplotlib.pyplot as plt
import torch
import torch.distributions.distribution
from torch.distributions import Distribution, Normal, MultivariateNormal
import sklearn.datasets
from flowforge import *

# Fix the seed to make the solutions more reproducible
torch.manual_seed(12345);

device = detect_device()""",
    ),
    (
        "125",
        """z = torch.rand(1000,2)
print(z.shape)
z2 = 2 * z
#z3 = torch.tensor(z[:,0]*2, z[:,1]*0.5)
plt.figure(figsize=(10, 4))
plt.subplot(1, 4, 1)
plt.plot(z[:,0], z[:,1], 'b.', alpha=0.1);
plt.xlim(-2.5, 2.5)
plt.ylim(-2.5, 2.5)
plt.subplot(1, 4, 2)
plt.plot(z2[:,0], z2[:,1], 'b.', alpha=0.1);
plt.xlim(-2.5, 2.5)
plt.ylim(-2.5, 2.5);
plt.subplot(1, 4, 3)
plt.plot(z[:,0]*2, z[:,1]*0.5, 'b.', alpha=0.1);
plt.xlim(-2.5, 2.5)
plt.ylim(-2.5, 2.5);
z = z + 0.5
plt.subplot(1, 4, 4)
plt.plot(z[:,0]*2, z[:,1]*0.5, 'b.', alpha=0.1);
plt.xlim(-2.5, 2.5)
plt.ylim(-2.5, 2.5);""",
    ),
    (
        "127",
        """layer = Scale(torch.tensor([2,2]))
test_flow_layer(layer, torch.randn(10,2))""",
    ),
    (
        "129",
        """layer = Translate(torch.tensor([2,2]))
test_flow_layer(layer, torch.randn(10,2))""",
    ),
    (
        "132",
        """# Verify the implementation of the AffineCoupling layer.
layer = AffineCoupling(block(5, 4, 12))
z = (torch.randn(3, 5), torch.randn(3, 4))
test_flow_layer(layer, z)
assert not isclose(layer.forward(z)[0], z), "The layer should not be trivial\"""",
    ),
    (
        "133",
        """assert isinstance(Split().forward(torch.randn(3, 9)), tuple), "Split should produce a tuple: split_z, log_det"
assert isinstance(Split().forward(torch.randn(3, 9))[0], tuple), "Split should produce a tuple"
assert isinstance(Split().inverse((torch.randn(3, 5), torch.randn(3, 4)))[0], torch.Tensor), "Split's inverse should produce a tensor"
test_flow_layer(Split(), torch.randn(3, 9))
test_flow_layer(Merge(), (torch.randn(3, 5), torch.randn(3, 4)))""",
    ),
    (
        "134",
        """z = (torch.randn(3, 5), torch.randn(3, 4))
test_flow_layer(Swap(), z)
z = (torch.randn(3, 5), torch.randn(3, 5))
assert not isclose(Swap().forward(z)[0], z), "The layer should not be trivial\"""",
    ),
    (
        "136",
        """# Verify the implementation
dim_A, dim_B, dim_hidden = 2, 2, 4
layer = SequentialFlow(
    Split(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Swap(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Merge()
)

z = torch.randn(10, 4)
test_flow_layer(layer, z)""",
    ),
    (
        "139",
        """dist = Multivariate(2)
assert dist.sample(10).shape == torch.Size((10, 2))
assert dist.log_prob(torch.randn(10,2)).shape == torch.Size((10,))
assert dist.log_prob(torch.zeros(1,2))[0] == -torch.log(torch.tensor(2 * torch.pi))""",
    ),
    (
        "141",
        """dist = Multivariate(2, Normal(0,1))
plot_log_prob_and_samples(dist)""",
    ),
    (
        "143",
        """dist = NormalizingFlow(
    Multivariate(2, Normal(0,1)),
    Scale(torch.tensor([0.5,1])),
    Translate(torch.tensor([1,-1]))
)
plot_log_prob_and_samples(dist)""",
    ),
    (
        "144",
        """dist = MultivariateNormal(torch.tensor([1.0,-1.0]), torch.diag(torch.tensor([0.5,1.0]) ** 2))
plot_log_prob_and_samples(dist)""",
    ),
    (
        "146",
        """n_samples = 100000
noisy_moons = sklearn.datasets.make_moons(n_samples=n_samples, noise=.1)
noisy_moons[0][:, 0] -= np.mean(noisy_moons[0][:, 0])
noisy_moons[0][:, 0] /= np.std(noisy_moons[0][:, 0])
noisy_moons[0][:, 1] -= np.mean(noisy_moons[0][:, 1])
noisy_moons[0][:, 1] /= np.std(noisy_moons[0][:, 1])
plt.plot(noisy_moons[0][:, 0], noisy_moons[0][:, 1], '.', alpha=0.05);""",
    ),
    (
        "147",
        """noisy_moons_points = torch.tensor(noisy_moons[0], dtype=torch.float32)
noisy_moons_labels = torch.tensor(noisy_moons[1])
moon_dataset = torch.utils.data.TensorDataset(noisy_moons_points, noisy_moons_labels)
moon_data_loader = torch.utils.data.DataLoader(moon_dataset, batch_size=128)

# for batch in moon_data_loader:
#     x, y = batch
#     plt.plot(x[:, 0], x[:, 1], 'b.', alpha=0.1)
#     print("Features (x):", x)
#     print("Labels (y):", y)
#     break""",
    ),
    (
        "148",
        """dim_A, dim_B, dim_hidden = 1, 1, 16
model = NormalizingFlow(
    Multivariate(2),
    Split(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Swap(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Swap(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Swap(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Merge()).to(device)""",
    ),
    ("149", "train(model, moon_data_loader, num_epochs=100, lr=0.001, device = device)"),
    ("150", "plot_log_prob_and_samples(model)"),
    (
        "151",
        """plt.plot(noisy_moons[0][:, 0], noisy_moons[0][:, 1], 'r.', alpha=0.05)
plot_samples(model)""",
    ),
    ("152", "plot_inverse_samples(model, noisy_moons_points)"),
    ("153", "plot_model_steps(model, 5)"),
    (
        "154",
        """model2 = NormalizingFlow(
    Multivariate(2),
    Split(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Swap(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Swap(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Swap(),
    AffineCoupling(block(dim_A, dim_B, dim_hidden)),
    Merge()).to(device)
train(model2, moon_data_loader, num_epochs=100, lr=0.001, device = device)""",
    ),
    ("156", "plot_model_steps(model2, 5)"),
]

FIGURE_CELLS = {"125", "141", "143", "144", "146", "150", "151", "152", "153", "156"}
TRAINING_CELLS = {"149", "154"}
