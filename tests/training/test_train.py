import copy

import pytest
import torch

from flowforge import train, two_moons
from tests.helpers import seed_model


def _reference_train(model, loader, epochs, lr):
    """The notebook's loop, literally: DataLoader batches, plain Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for x, _y in loader:
            loss = -torch.mean(model.log_prob(x))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def test_fast_path_follows_the_notebook_loop_step_for_step():
    data = two_moons(2000, seed=0)
    torch.manual_seed(0)
    model = seed_model()
    reference = copy.deepcopy(model)
    losses = train(model, data.data_loader(batch_size=128), num_epochs=2, lr=1e-3, progress=False)
    _reference_train(reference, data.data_loader(batch_size=128), 2, 1e-3)
    assert len(losses) == 2 and losses[1] < losses[0]
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_accepts_bare_tensor_batches_and_other_optimizers():
    data = two_moons(1000, seed=0)
    batches = list(data.points.split(100))  # any iterable of tensors
    model = seed_model()
    losses = train(model, batches, num_epochs=3, lr=1e-2, optimizer=torch.optim.SGD, progress=False)
    assert losses[-1] < losses[0]


def test_non_finite_data_raises_before_any_step():
    data = two_moons(500, seed=0)
    points = data.points.clone()
    points[7, 1] = float("nan")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(points, data.labels), batch_size=64
    )
    model = seed_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"1 row\(s\) with NaN"):
        train(model, loader, num_epochs=1, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_wrong_width_from_a_generic_loader():
    with pytest.raises(ValueError, match="width 3, but the model expects width 2"):
        train(seed_model(), [torch.randn(8, 3)], num_epochs=1, progress=False)
