"""What each of two gloo processes does in ``test_distributed.py`` (started by
``torch.multiprocessing.spawn``): the scenarios run one after the other in one process
group, and each process saves what it saw to ``rank<r>.pt`` in the output folder."""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

import torch

from flowforge import AffineCoupling, Merge, Multivariate, NormalizingFlow, Split, Swap, block, fit
from flowforge.initialize import initialize_from_data
from flowforge.layers import ActNorm
from flowforge.training.distributed import (
    DistributedError,
    LaunchError,
    current_world,
    distributed,
    loopback_environment,
)
from flowforge.workbench.data import two_moons_splits
from flowforge.workbench.runs.checkpoint import load_checkpoint, save_checkpoint

# Batches of 7 split 3 + 4 between two processes; 344 = 7 * 49 + 1 rows leave a last
# batch of one row, which only the second process trains on.
N_TRAIN, N_HELDOUT, BATCH = 344, 201, 7
RECIPE = dict(epochs=2, batch_size=BATCH, lr=5e-3, warmup=5, seed=3)


def moons() -> tuple[torch.Tensor, torch.Tensor]:
    train, heldout = two_moons_splits(N_TRAIN, N_HELDOUT, seed=0)
    return train.points, heldout.points


def fresh_model(data: torch.Tensor) -> NormalizingFlow:
    """The notebook's couplings (hidden width 8) after an ``ActNorm`` initialized from ``data``."""
    torch.manual_seed(0)
    layers = [Split()]
    for i in range(3):
        layers += [AffineCoupling(block(1, 1, 8))] + ([Swap()] if i < 2 else [])
    model = NormalizingFlow(Multivariate(2), *layers, Merge(), ActNorm(2))
    initialize_from_data(model, data)
    return model


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _errors(train: torch.Tensor, heldout: torch.Tensor, rank: int) -> dict[str, str]:
    """Launch mistakes every process must report (the same message on each)."""
    found = {}
    for name, kwargs in {
        "batch": dict(batch_size=1),
        "data": dict(data=train[: N_TRAIN - rank]),
        "validation": dict(validation=heldout if rank == 0 else None),
    }.items():
        args = dict(data=train, epochs=1, batch_size=BATCH, progress=False) | kwargs
        try:
            fit(fresh_model(train), args.pop("data"), **args)
        except LaunchError as error:
            found[name] = str(error)
    return found


def _train(train: torch.Tensor, heldout: torch.Tensor, rank: int, out: Path) -> dict:
    """Two epochs with uneven shares; the first process checkpoints epoch 1 to a file.

    The second process starts from a deliberately different ActNorm: DDP must replace it
    with the first process's values before the first step.
    """
    model = fresh_model(train if rank == 0 else 2 * train)
    called = []

    def checkpoint(state) -> None:
        called.append(state.epoch)
        if state.epoch == 1:
            save_checkpoint(out / "two_epoch1.safetensors", state)

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        history = fit(
            model, train, validation=heldout, progress=True, callbacks=[checkpoint], **RECIPE
        )
    return {
        "weights": weights(model),
        "history": history.to_dict(),
        "callbacks": called,
        "stderr": stderr.getvalue(),
    }


def _resume(train: torch.Tensor, heldout: torch.Tensor, path: Path) -> dict[str, torch.Tensor]:
    """Epoch 2 from a checkpoint of epoch 1 (written by one process or by two)."""
    model = fresh_model(train)
    state = load_checkpoint(path).state
    fit(model, train, validation=heldout, progress=False, resume=state, **RECIPE)
    return weights(model)


def _dead_peer(train: torch.Tensor, rank: int, out: Path) -> dict:
    """The second process leaves after epoch 1; the first must fail, not hang."""
    model = fresh_model(train)
    path = out / "dead_epoch.safetensors"
    recipe = RECIPE | dict(epochs=1 if rank == 1 else 3)
    if rank == 1:
        fit(model, train, progress=False, **recipe)
        return {}
    started = time.perf_counter()
    try:
        fit(model, train, progress=False, callbacks=[lambda s: save_checkpoint(path, s)], **recipe)
    except DistributedError as error:
        return {"error": str(error), "seconds": time.perf_counter() - started}
    return {"error": None}


def worker(rank: int, port: int, out: str, timeout: float) -> None:
    """One of two processes; ``port`` is a free port on 127.0.0.1 for the rendezvous."""
    os.environ.update(loopback_environment(rank, 2, port))
    torch.set_num_threads(1)
    out = Path(out)
    train, heldout = moons()
    seen: dict = {}
    with distributed("cpu", timeout=timeout) as (world, device):
        seen["world"] = (world.rank, world.size, world.timeout, str(device))
        seen["errors"] = _errors(train, heldout, rank)
        seen["train"] = _train(train, heldout, rank, out)
        seen["resumed_two"] = _resume(train, heldout, out / "two_epoch1.safetensors")
        seen["resumed_one"] = _resume(train, heldout, out / "one_epoch1.safetensors")
    seen["again"] = []
    for _ in range(2):  # groups made again after one was destroyed: no stale rendezvous
        with distributed("cpu", timeout=timeout):
            model = fresh_model(train)
            fit(model, train, epochs=1, batch_size=64, progress=False)
            seen["again"].append(weights(model))
    torch.save(seen, out / f"rank{rank}.pt")
    with distributed("cpu", timeout=timeout):
        seen["dead"] = _dead_peer(train, rank, out)
        torch.save(seen, out / f"rank{rank}.pt")
        if rank == 1:
            os._exit(0)  # the dead peer: leave without a word to the other process
    seen["after"] = current_world().size
    torch.save(seen, out / f"rank{rank}.pt")
