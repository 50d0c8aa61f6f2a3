"""Peak memory of scoring or sampling many points, measured in a fresh process.

``python -m benchmarks.memory_probe CONTENDER score|sample N`` builds the contender,
makes ``N`` standard-normal points (for ``score``), resets the peak resident set size,
runs the operation once and prints JSON: how far memory rose above its level before
the call (``peak_extra_bytes``), the input's size and the seconds taken. A fresh
process per measurement keeps one library's allocations from hiding another's.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from benchmarks import contenders
from benchmarks.measure import peak_extra_bytes


def _points(n: int, chunk: int = 1 << 22) -> torch.Tensor:
    """``n`` standard-normal 2-D points, drawn chunk by chunk (no large temporaries)."""
    x = torch.empty(n, 2)
    generator = torch.Generator().manual_seed(0)
    for start in range(0, n, chunk):
        x[start : start + chunk] = torch.randn(min(chunk, n - start), 2, generator=generator)
    return x


def main(argv: list[str]) -> None:
    name, operation, n = argv[0], argv[1], int(argv[2])
    torch.set_num_threads(1)
    contender = contenders.build(name)
    if operation == "score":
        x = _points(n)
        contender.score(x[:1000])  # warm up outside the measurement

        def run() -> torch.Tensor:
            return contender.score(x)

        input_bytes = x.element_size() * x.numel()
    elif operation == "sample":
        contender.sample(1000)

        def run() -> torch.Tensor:
            return contender.sample(n)

        input_bytes = 0
    else:
        raise SystemExit(f"unknown operation {operation!r}; use 'score' or 'sample'")
    started = time.perf_counter()
    extra = peak_extra_bytes(run)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "contender": name,
                "operation": operation,
                "points": n,
                "peak_extra_bytes": extra,
                "input_bytes": input_bytes,
                "seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
