"""Data-parallel training with ``torch.distributed``: the process group ``torchrun`` describes.

``torchrun --nproc_per_node=N script.py`` starts ``N`` copies of a script and gives each
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its
environment. ``distributed()`` joins the process group they describe for the duration of
a block (gloo for the CPU, NCCL for CUDA, one process per device, a timeout on every
collective operation) and leaves it afterwards; outside ``torchrun``, or with one
process, it sets nothing up. ``fit`` reads the group with ``current_world()``: under it,
each process takes its share of every batch (``share``) and DistributedDataParallel
averages the gradients, so N processes follow the trajectory of one.

Collectives that fail (a peer died, or did not answer within the timeout) are reported
as ``DistributedError``: one line that says which process saw it and what to do.
"""

from __future__ import annotations

import atexit
import datetime
import inspect
import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from flowforge.device import resolve_device
from flowforge.errors import DistributedError, LaunchError

# Seconds a collective operation waits for the other processes before the run fails.
# Long enough for rank 0 to write a checkpoint between epochs on a slow disk.
DEFAULT_TIMEOUT = 300.0
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place among the processes that train one model.

    ``rank`` runs from 0 to ``size - 1`` over all machines; ``local_rank`` numbers the
    processes of one machine (its GPU index under NCCL). Rank 0 writes files.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    timeout: float = DEFAULT_TIMEOUT

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_by_torchrun(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment describes several processes (``WORLD_SIZE`` > 1)."""
    env = os.environ if env is None else env
    return int(env.get("WORLD_SIZE", "1")) > 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free now, for a rendezvous on one machine."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def loopback_environment(rank: int, world_size: int, port: int) -> dict[str, str]:
    """The variables ``torchrun`` would give process ``rank`` of ``world_size`` on this
    machine (rendezvous on ``127.0.0.1:port``): for processes started another way, such
    as ``torch.multiprocessing.spawn``, to set with ``os.environ.update`` before
    ``distributed()`` or ``fit``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank} of {world_size}")
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(rank),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def current_world() -> World:
    """The initialized process group as a ``World``; ``World()`` (one process) without one."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return World(dist.get_rank(), dist.get_world_size(), local, _joined["timeout"])


# The timeout of the group ``distributed()`` joined (torch does not expose it), the
# rendezvous store of this process, and how many groups it has joined through it.
_joined: dict = {"timeout": DEFAULT_TIMEOUT, "store": None, "groups": 0}


def _fresh_store(timeout: float) -> dist.Store:
    """The rendezvous store under a prefix no earlier group of this process used.

    A group made again after ``destroy_process_group`` (``fit`` called twice under
    ``torchrun``) would otherwise find the previous group's keys in the store, still
    there: a fast process then connects to a peer's old, closing group and both wait
    forever. Every process makes its groups in the same order, so the n-th group of
    each has the same prefix. The store itself is made once and kept until exit.
    """
    if _joined["store"] is None:
        rendezvous = dist.rendezvous("env://", timeout=datetime.timedelta(seconds=timeout))
        _joined["store"] = next(iter(rendezvous))[0]
        atexit.register(_joined.update, store=None)  # before the interpreter tears down
    _joined["groups"] += 1
    return dist.PrefixStore(f"flowforge/{_joined['groups']}/", _joined["store"])


def local_device(
    device: str | torch.device | None = "auto", env: Mapping[str, str] | None = None
) -> torch.device:
    """The device this process trains on: ``"auto"`` or ``"cuda"`` become the GPU
    ``LOCAL_RANK`` under ``torchrun`` (one process per GPU); otherwise as
    ``resolve_device``. Raises ``LaunchError`` when a process has no GPU of its own."""
    env = os.environ if env is None else env
    if not launched_by_torchrun(env):
        return resolve_device(device)
    local_rank = int(env.get("LOCAL_RANK", "0"))
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= count:
            raise LaunchError(
                f"process {env.get('RANK')} (local rank {local_rank}) has no GPU "
                f"{device.index}: this machine has {count}; start at most {count} processes "
                "per machine (torchrun --nproc_per_node=gpu)"
            )
    elif device.type != "cpu":
        raise LaunchError(
            f"distributed training runs on CPUs (gloo) or CUDA GPUs (NCCL), not {device.type}; "
            "use --device cpu"
        )
    return device


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo for the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def _check_environment(env: Mapping[str, str]) -> None:
    missing = [name for name in TORCHRUN_VARIABLES if name not in env]
    if missing:
        raise LaunchError(
            f"WORLD_SIZE is {env.get('WORLD_SIZE')} but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: start the processes with "
            "torchrun (torchrun --nproc_per_node=N -m flowforge train ...)"
        )


@contextmanager
def distributed(
    device: str | torch.device | None = "auto", timeout: float = DEFAULT_TIMEOUT
) -> Iterator[tuple[World, torch.device]]:
    """Join the process group ``torchrun`` describes for the block: ``(world, device)``.

    The backend follows the device (``local_device``): NCCL for a GPU, gloo for the CPU.
    Every collective operation fails after ``timeout`` seconds without an answer from
    the other processes. The group is destroyed when the block ends, also on an error
    (a process group left to the interpreter's exit can abort it). A group that already
    exists is used as it is and left alone; outside ``torchrun`` the block gets
    ``World()`` and the device.
    """
    device = local_device(device)
    if dist.is_available() and dist.is_initialized():
        yield current_world(), device
        return
    if not launched_by_torchrun():
        yield World(), device
        return
    _check_environment(os.environ)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    _joined["timeout"] = timeout
    # NCCL connects eagerly when told the device (torch >= 2.3 takes ``device_id``).
    eager = device.type == "cuda" and takes_keyword(dist.init_process_group, "device_id")
    dist.init_process_group(
        backend_for(device),
        store=_fresh_store(timeout),
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        timeout=datetime.timedelta(seconds=timeout),
        **({"device_id": device} if eager else {}),
    )
    try:
        yield current_world(), device
    finally:
        dist.destroy_process_group()


def takes_keyword(function, name: str) -> bool:
    """Whether ``function`` (or a class's constructor) has a parameter ``name``: for
    arguments that only some torch versions take."""
    return name in inspect.signature(function).parameters


def share(rows: int, world: World) -> tuple[int, int]:
    """The rows ``[start, stop)`` of a batch of ``rows`` that this process trains on.

    Contiguous blocks in rank order whose sizes differ by at most one; a process
    gets no rows when the batch has fewer rows than there are processes.
    """
    return rows * world.rank // world.size, rows * (world.rank + 1) // world.size


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(values: Tensor, world: World) -> Tensor:
    """``values`` summed over all processes, in float64 (unchanged with one process)."""
    values = values.detach().double()
    if not world.distributed:
        return values
    reduced = values.to(_collective_device())
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(values.device)


def _fingerprint(x: Tensor | None) -> Tensor:
    """Row count, sum and an order-sensitive weighted sum of ``x`` (float64, on the CPU);
    ``-1`` for the count of no data."""
    if x is None:
        return torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64)
    x = x.detach().double().reshape(len(x), -1)
    weights = torch.arange(1, len(x) + 1, dtype=torch.float64, device=x.device)
    return torch.stack([x.new_tensor(float(len(x))), x.sum(), weights @ x.sum(1)]).cpu()


def check_same_data(data: Tensor, validation: Tensor | None, world: World) -> None:
    """Raise ``LaunchError`` on every process unless all hold the same training rows and
    the same validation rows (or none); one collective operation whatever differs."""
    if not world.distributed:
        return
    mine = torch.cat([_fingerprint(data), _fingerprint(validation)]).to(_collective_device())
    gathered = [torch.empty_like(mine) for _ in range(world.size)]
    dist.all_gather(gathered, mine)
    for what, part in (("training data", slice(0, 3)), ("validation data", slice(3, 6))):
        rows = [int(g[part][0]) for g in gathered]
        different = [
            r for r, g in enumerate(gathered) if not torch.equal(g[part], gathered[0][part])
        ]
        if different:
            counts = ", ".join("none" if n < 0 else str(n) for n in rows)
            raise LaunchError(
                f"process(es) {different} hold other {what} than process 0 (rows per "
                f"process: {counts}): give every process the same rows (the same data "
                "and seed); fit splits every batch between the processes itself"
            )


def collective_failure(error: BaseException, world: World, epoch: int) -> DistributedError:
    """A one-line ``DistributedError`` for a failed collective in epoch ``epoch`` (from 0)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    first = re.sub(r"^\[[^\]]*\]\s*", "", first)  # gloo's "[.../pair.cc:537] "
    first = first.split(". This is typically")[0].rstrip(".")
    return DistributedError(
        f"process {world.rank} of {world.size}: a collective operation failed in epoch "
        f"{epoch + 1} (another process died, or did not answer within {world.timeout:g} s; "
        f"see its output): {first[:200]}. The checkpoint of the last completed epoch, if "
        "one was written, is intact; continue from it"
    )


def is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` came from the process group (a timeout, a closed connection)."""
    return isinstance(error, getattr(dist, "DistError", ())) or any(
        word in str(error) for word in ("Gloo", "gloo", "NCCL", "Connection closed", "Timed out")
    )


def broadcast_object(value: object, world: World) -> object:
    """Rank 0's ``value`` on every process (unchanged with one process)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=_collective_device())
    return box[0]
