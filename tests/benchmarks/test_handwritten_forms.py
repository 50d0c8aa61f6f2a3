"""The benchmark of the two hand-written forms: a smoke run, and the same gradients."""

import json

import torch

from benchmarks import handwritten_forms
from flowforge import realnvp
from flowforge.training import handwritten_nll


def test_the_autograd_function_form_gives_the_direct_gradients():
    torch.manual_seed(0)
    model = realnvp().double()
    x = torch.randn(33, 2, dtype=torch.float64)
    nll = handwritten_nll(model)
    loss = nll(x)
    direct = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    again = handwritten_forms._ThroughAutograd.apply(nll, x, *model.parameters())
    again.backward()
    torch.testing.assert_close(again.detach(), loss)
    for p, g in zip(model.parameters(), direct, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_a_quick_run_writes_every_form(tmp_path):
    out = tmp_path / "forms.json"
    handwritten_forms.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    for batch in ("128", "1024"):
        forms = saved["batches"][batch]
        assert set(forms) == {"direct", "autograd-function", "autograd"}
        assert all(form["median"] > 0 for form in forms.values())
