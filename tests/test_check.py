"""check_flow must catch each kind of broken layer, and pass correct ones."""

import pytest
import torch

from flowforge import FlowLayer, Scale, check_flow, log_det_jacobian
from flowforge.errors import FlowCheckError


class Broken(FlowLayer):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def forward(self, z, *context):
        x = 2 * z
        ld = z.new_full((len(z),), z.shape[1] * 0.6931471805599453)
        if self.mode == "wrong-log-det":
            ld = ld + 0.1
        if self.mode == "scalar-log-det":
            ld = 1.3862943611198906
        if self.mode == "float32-log-det":
            ld = ld.float()
        return x, ld

    def inverse(self, x, *context):
        z = x / 2 if self.mode != "not-inverse" else x / 2.1
        ld = -x.new_full((len(x),), x.shape[1] * 0.6931471805599453)
        if self.mode == "inverse-sign":
            ld = -ld
        if self.mode == "wrong-log-det":  # consistent in both directions, wrong vs autograd
            ld = ld - 0.1
        if self.mode == "float32-log-det":
            ld = ld.float()
        return z, ld


@pytest.mark.parametrize(
    "mode, message",
    [
        ("wrong-log-det", "autograd"),
        ("scalar-log-det", "one element per sample"),
        ("float32-log-det", "torch.float32"),
        ("not-inverse", "inverse should undo forward"),
        ("inverse-sign", "negative of forward"),
    ],
)
def test_check_flow_catches(mode, message):
    with pytest.raises(FlowCheckError, match=message):
        check_flow(Broken(mode), torch.randn(4, 2, dtype=torch.float64))


def test_check_flow_passes_a_correct_layer():
    check_flow(Broken("correct"), torch.randn(4, 2, dtype=torch.float64))


def test_log_det_jacobian_matches_closed_form():
    layer = Scale([2.0, -0.5, 3.0]).double()
    ld = log_det_jacobian(layer, torch.randn(5, 3, dtype=torch.float64))
    torch.testing.assert_close(ld, torch.full((5,), float(torch.log(torch.tensor(3.0)))).double())


def test_flow_check_error_is_an_assertion_error():
    assert issubclass(FlowCheckError, AssertionError)
