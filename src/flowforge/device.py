"""Pick the compute device."""

from __future__ import annotations

import torch


def detect_device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` -> ``detect_device()``; anything else -> ``torch.device``."""
    if device is None or device == "auto":
        return detect_device()
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'"
        ) from error


def is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing the code that calls this (``False`` on old torch)."""
    check = getattr(torch.compiler, "is_compiling", None)
    return bool(check is not None and check())
