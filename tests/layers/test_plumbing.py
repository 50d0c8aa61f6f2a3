import pytest
import torch

from flowforge import Merge, Split, Swap


def test_odd_width_splits_as_torch_chunk():
    (a, b), _ = Split().forward(torch.randn(3, 9))
    assert (a.shape[1], b.shape[1]) == (5, 4)


def test_explicit_sizes_split_and_merge_back():
    z = torch.randn(4, 9)
    parts, _ = Split([2, 3, 4]).forward(z)
    assert [p.shape[1] for p in parts] == [2, 3, 4]
    back, log_det = Merge([2, 3, 4]).forward(parts)
    torch.testing.assert_close(back, z)
    assert log_det.shape == (4,) and not log_det.any()


def test_sizes_that_do_not_add_up_are_rejected():
    with pytest.raises(ValueError, match=r"add up to 5, but the input has width 9"):
        Split([2, 3]).forward(torch.randn(2, 9))


def test_width_one_cannot_be_halved():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        Split().forward(torch.randn(2, 1))


def test_merge_refuses_parts_it_would_split_differently():
    # An odd width after an odd number of swaps: (4, 5) would come back as (5, 4).
    with pytest.raises(ValueError, match=r"Merge\(\[4, 5\]\)"):
        Merge().forward((torch.randn(2, 4), torch.randn(2, 5)))
    merged, _ = Merge([4, 5]).forward((torch.randn(2, 4), torch.randn(2, 5)))
    (a, b), _ = Merge([4, 5]).inverse(merged)
    assert (a.shape[1], b.shape[1]) == (4, 5)


def test_swap_needs_a_pair():
    with pytest.raises(TypeError, match="pair"):
        Swap().forward(torch.randn(2, 2))


def test_split_on_another_dimension():
    z = torch.randn(2, 3, 4, 4)
    (a, b), _ = Split(dim=2).forward(z)
    assert a.shape == (2, 3, 2, 4)
    torch.testing.assert_close(Split(dim=2).inverse((a, b))[0], z)
