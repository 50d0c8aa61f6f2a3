"""The course notebook's test cells, run unchanged against flowforge.

Each test body is a cell of the notebook (section numbers in the names), copied
verbatim; only the imports come from flowforge instead of the notebook's own cells.
"""

import torch
from torch.distributions import MultivariateNormal, Normal

from flowforge import (
    AffineCoupling,
    Merge,
    Multivariate,
    NormalizingFlow,
    Scale,
    SequentialFlow,
    Split,
    Swap,
    Translate,
    block,
    isclose,
    test_flow_layer,
)


def test_10_1_d_scale():
    layer = Scale(torch.tensor([2,2]))  # fmt: skip
    test_flow_layer(layer, torch.randn(10,2))  # fmt: skip


def test_10_1_g_translate():
    layer = Translate(torch.tensor([2,2]))  # fmt: skip
    test_flow_layer(layer, torch.randn(10,2))  # fmt: skip


def test_10_2_c_affine_coupling():
    # Verify the implementation of the AffineCoupling layer.
    layer = AffineCoupling(block(5, 4, 12))
    z = (torch.randn(3, 5), torch.randn(3, 4))
    test_flow_layer(layer, z)
    assert not isclose(layer.forward(z)[0], z), "The layer should not be trivial"


def test_10_2_e_split_merge():
    assert isinstance(Split().forward(torch.randn(3, 9)), tuple), "Split should produce a tuple: split_z, log_det"  # fmt: skip  # noqa: E501
    assert isinstance(Split().forward(torch.randn(3, 9))[0], tuple), "Split should produce a tuple"  # fmt: skip  # noqa: E501
    assert isinstance(Split().inverse((torch.randn(3, 5), torch.randn(3, 4)))[0], torch.Tensor), "Split's inverse should produce a tensor"  # fmt: skip  # noqa: E501
    test_flow_layer(Split(), torch.randn(3, 9))
    test_flow_layer(Merge(), (torch.randn(3, 5), torch.randn(3, 4)))


def test_10_2_f_swap():
    z = (torch.randn(3, 5), torch.randn(3, 4))
    test_flow_layer(Swap(), z)
    z = (torch.randn(3, 5), torch.randn(3, 5))
    assert not isclose(Swap().forward(z)[0], z), "The layer should not be trivial"


def test_10_2_h_sequential_flow():
    # Verify the implementation
    dim_A, dim_B, dim_hidden = 2, 2, 4
    layer = SequentialFlow(
        Split(),
        AffineCoupling(block(dim_A, dim_B, dim_hidden)),
        Swap(),
        AffineCoupling(block(dim_A, dim_B, dim_hidden)),
        Merge()
    )  # fmt: skip

    z = torch.randn(10, 4)
    test_flow_layer(layer, z)


def test_10_3_a_multivariate():
    dist = Multivariate(2)
    assert dist.sample(10).shape == torch.Size((10, 2))
    assert dist.log_prob(torch.randn(10,2)).shape == torch.Size((10,))  # fmt: skip
    assert dist.log_prob(torch.zeros(1,2))[0] == -torch.log(torch.tensor(2 * torch.pi))  # fmt: skip


def _fixed_flow_and_reference():
    dist = NormalizingFlow(
        Multivariate(2, Normal(0,1)),
        Scale(torch.tensor([0.5,1])),
        Translate(torch.tensor([1,-1]))
    )  # fmt: skip
    reference = MultivariateNormal(torch.tensor([1.0,-1.0]), torch.diag(torch.tensor([0.5,1.0]) ** 2))  # fmt: skip  # noqa: E501
    return dist, reference


def test_10_3_d_fixed_flow_density_equals_multivariate_normal():
    dist, reference = _fixed_flow_and_reference()
    x0, x1 = torch.meshgrid(
        torch.linspace(-2.5, 2.5, 101), torch.linspace(-2.5, 2.5, 101), indexing="ij"
    )  # noqa: E501
    x = torch.stack([x0.flatten(), x1.flatten()], dim=1)
    torch.testing.assert_close(dist.log_prob(x), reference.log_prob(x), atol=1e-5, rtol=1e-6)


def test_10_3_d_fixed_flow_samples_match_multivariate_normal():
    dist, reference = _fixed_flow_and_reference()
    samples = dist.sample(200_000)
    # Standard errors of the mean are ~0.002 and of the variances ~0.003 here.
    torch.testing.assert_close(samples.mean(0), reference.mean, atol=0.01, rtol=0)
    torch.testing.assert_close(samples.var(0), reference.variance, atol=0.02, rtol=0)
