"""The reference chain of the ``logistic-breast-cancer`` target, made once and shipped.

HMC (``flowforge.targets.hmc``) on many chains, whitened by the Laplace approximation
(mode and inverse Hessian by Newton's method), each chain started from an
over-dispersed draw of it (twice its scale). Writes the posterior's mean and standard
deviation with their Monte Carlo standard errors (batch means), the split-R̂ across
chains and the settings to ``src/flowforge/targets/data/logistic_breast_cancer_reference.json``.

    OMP_NUM_THREADS=1 python -m benchmarks.logistic_reference            # the shipped file
    OMP_NUM_THREADS=1 python -m benchmarks.logistic_reference --draws 2000 --out /tmp/ref.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from flowforge.targets import get
from flowforge.targets.hmc import batch_mcse, hmc, split_rhat
from flowforge.targets.logistic import REFERENCE

SCRIPT = "benchmarks/logistic_reference.py"


def make_reference(chains: int, draws: int, warmup: int, leapfrog: int, seed: int) -> dict:
    """Run the chains and summarize them (a JSON-able dict)."""
    target = get("logistic-breast-cancer")
    mode, cov = target.laplace()
    chol = torch.linalg.cholesky(cov)
    g = torch.Generator().manual_seed(seed)
    start = mode + 2 * torch.randn(chains, target.dim, generator=g, dtype=torch.float64) @ chol.T
    began = time.process_time()
    run = hmc(
        target.log_prob,
        start,
        draws=draws,
        warmup=warmup,
        leapfrog=leapfrog,
        mean=mode,
        chol=chol,
        generator=g,
    )
    seconds = time.process_time() - began
    mean, std, mcse_mean, mcse_std = batch_mcse(run.draws)
    rhat = split_rhat(run.draws)
    import sklearn

    return {
        "target": target.name,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "mcse_mean": mcse_mean.tolist(),
        "mcse_std": mcse_std.tolist(),
        "rhat_max": float(rhat.max()),
        "laplace_mode": mode.tolist(),
        "settings": {
            "script": SCRIPT,
            "command": f"python -m benchmarks.logistic_reference --chains {chains} --draws "
            f"{draws} --warmup {warmup} --leapfrog {leapfrog} --seed {seed}",
            "sampler": "HMC whitened by the Laplace approximation, step size tuned in warm-up",
            "chains": chains,
            "draws_per_chain": draws,
            "warmup": warmup,
            "leapfrog": leapfrog,
            "step_size": run.step_size,
            "accept_rate": run.accept_rate,
            "seed": seed,
            "prior_scale": target.prior_scale,
            "data": "sklearn.datasets.load_breast_cancer, features standardized, intercept first",
            "design_shape": list(target.design.shape),
            "mcse": "batch means, 20 batches per chain",
            "cpu_seconds": round(seconds, 1),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "python": platform.python_version(),
            "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=16)
    parser.add_argument("--draws", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--leapfrog", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    ref = make_reference(args.chains, args.draws, args.warmup, args.leapfrog, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(ref, indent=1) + "\n")
    s = ref["settings"]
    print(
        f"{args.out}: {s['chains']} chains x {s['draws_per_chain']} draws,"
        f" step {s['step_size']:.3f},"
        f" accept {s['accept_rate']:.2f}, max R-hat {ref['rhat_max']:.4f},"
        f" max mcse/std {max(m / d for m, d in zip(ref['mcse_mean'], ref['std'])):.4f},"
        f" {s['cpu_seconds']} CPU-s"
    )


if __name__ == "__main__":
    main()
