"""Neural posterior estimation in sbi: a flowforge flow beside sbi's default density
estimator, the same simulations for both, one CPU thread.

    pip install torch==2.13.0 -e '.[sbi]'
    python -m benchmarks.sbi            # about 6 minutes
    python -m benchmarks.sbi --quick    # a smoke run (under a minute)

Two tasks, each trained by sbi's ``NPE`` with its own defaults (batch 200, learning
rate 5e-4, early stopping after 20 epochs without improvement):

- ``linear_gaussian``: sbi's linear Gaussian simulator, 10-D parameters with a standard
  normal prior, data ``theta + noise`` with noise covariance ``0.1 I``; the posterior
  is Gaussian and known exactly (``true_posterior_linear_gaussian_mvn_prior``). Scored
  by KL(exact || estimate), the Monte Carlo mean of ``log p_exact - log q`` over 5,000
  exact posterior draws (± its standard error), and by C2ST (sbi's ``c2st``, a random
  forest, 5 folds: 0.5 is indistinguishable) of 2,000 estimator draws against 2,000
  exact ones.
- ``two_moons``: the two-moons simulator (Greenberg et al. 2019, as in sbibm) on a
  uniform prior over ``[-1, 1]^2``; its posterior has no closed-form density, but it
  can be sampled exactly by inverting the simulator (draw the simulator's noise, solve
  for ``theta``, keep the draws inside the prior's box), which gives the reference
  draws the C2ST compares against.

The contenders: ``flowforge``, ``flowforge_flow()`` with its defaults (a flowforge MAF,
5 layers, hidden 50, tanh, zero-initialized last layers so training starts from the
z-scored prior; ``flowforge.integrations.sbi.ESTIMATOR_DEFAULTS``); ``sbi (maf)``,
``NPE``'s default ``density_estimator="maf"`` (nflows MAF, 5 transforms, hidden 50,
tanh). Both are trained by sbi's own loop with its defaults. Writes ``benchmarks/results/sbi.json``.
"""

from __future__ import annotations

import argparse
import math
import time
from importlib import metadata
from pathlib import Path

import torch
from torch.distributions import MultivariateNormal

from benchmarks.measure import report_and_save
from benchmarks.speed import environment

# sbi is imported where it is used: ``table`` renders the results without it (the docs).

RESULTS = Path(__file__).parent / "results" / "sbi.json"
CONTENDERS = ("flowforge", "sbi (maf)")
DIM, NOISE = 10, 0.1


def _estimator(name: str):
    from flowforge.integrations.sbi import flowforge_flow

    return flowforge_flow() if name == "flowforge" else "maf"


def train(name: str, prior, theta: torch.Tensor, x: torch.Tensor, max_epochs: int):
    """NPE with one contender's estimator: the posterior, the epochs and the seconds."""
    from sbi.inference import NPE

    from flowforge.integrations.sbi import NoTracker

    start = time.perf_counter()
    inference = NPE(
        prior, density_estimator=_estimator(name), tracker=NoTracker(), show_progress_bars=False
    )
    inference.append_simulations(theta, x).train(
        max_num_epochs=max_epochs, show_train_summary=False
    )
    epochs = inference._summary["epochs_trained"][-1]
    return inference.build_posterior(), int(epochs), time.perf_counter() - start


def linear_gaussian_task(seed: int):
    """The 10-D linear Gaussian: prior, simulator, observation, exact posterior."""
    from sbi.simulators.linear_gaussian import (
        linear_gaussian,
        true_posterior_linear_gaussian_mvn_prior,
    )

    torch.manual_seed(seed)
    prior = MultivariateNormal(torch.zeros(DIM), torch.eye(DIM))
    shift, cov = torch.zeros(DIM), NOISE * torch.eye(DIM)
    x_o = linear_gaussian(prior.sample((1,)), shift, cov)
    exact = true_posterior_linear_gaussian_mvn_prior(
        x_o, shift, cov, prior.mean, prior.covariance_matrix
    )
    return prior, (lambda theta: linear_gaussian(theta, shift, cov)), x_o, exact


def two_moons(theta: torch.Tensor) -> torch.Tensor:
    """The two-moons simulator (sbibm's): a crescent shifted by a fold of ``theta``."""
    a = (torch.rand(len(theta)) - 0.5) * math.pi
    r = 0.1 + 0.01 * torch.randn(len(theta))
    p = torch.stack([r * torch.cos(a) + 0.25, r * torch.sin(a)], dim=1)
    s = torch.stack(
        [-(theta[:, 0] + theta[:, 1]).abs(), -theta[:, 0] + theta[:, 1]], dim=1
    ) / math.sqrt(2)
    return p + s


def two_moons_reference(x_o: torch.Tensor, n: int) -> torch.Tensor:
    """Exact posterior draws under the uniform prior on ``[-1, 1]^2``: the simulator's
    noise drawn, ``theta`` solved for (both signs of the fold), draws outside the box
    dropped. The map from ``theta`` to the shift is linear on each branch with the same
    Jacobian, so the accepted draws follow prior times likelihood."""
    kept = []
    while sum(len(k) for k in kept) < n:
        p = two_moons(torch.zeros(4 * n, 2))  # the noise alone: the shift is 0 at theta 0
        s = (x_o - p) * math.sqrt(2)
        ok = s[:, 0] <= 0
        total, diff = -s[:, 0], s[:, 1]  # theta1 + theta2 = ±total, theta2 - theta1 = diff
        sign = torch.where(torch.rand(len(s)) < 0.5, -1.0, 1.0)
        theta = torch.stack([(sign * total - diff) / 2, (sign * total + diff) / 2], dim=1)
        ok &= (theta.abs() <= 1).all(dim=1)
        kept.append(theta[ok])
    return torch.cat(kept)[:n]


def _kl(posterior, exact, x_o: torch.Tensor, n: int) -> dict:
    draws = exact.sample((n,))
    with torch.no_grad():
        gap = exact.log_prob(draws) - posterior.log_prob(draws, x=x_o)
    return {"mean": gap.mean().item(), "stderr": (gap.std() / math.sqrt(n)).item()}


def _score_contenders(prior, theta, x, x_o, reference, seed, max_epochs, exact=None) -> dict:
    """Train every contender on the same simulations; C2ST against ``reference`` (and
    KL from ``exact``, the exact posterior, where there is one)."""
    from sbi.utils.metrics import c2st

    draws = len(reference)
    out = {}
    for name in CONTENDERS:
        torch.manual_seed(seed)
        posterior, epochs, seconds = train(name, prior, theta, x, max_epochs)
        samples = posterior.sample((draws,), x=x_o, show_progress_bars=False)
        out[name] = {"c2st": c2st(samples, reference, seed=seed).item()}
        if exact is not None:
            out[name]["kl"] = _kl(posterior, exact, x_o, 5 * draws)
        out[name] |= {"epochs": epochs, "seconds": seconds}
    return out


def run_linear_gaussian(seed: int, sims: int, max_epochs: int, draws: int) -> dict:
    prior, simulate, x_o, exact = linear_gaussian_task(seed)
    theta = prior.sample((sims,))
    x = simulate(theta)
    reference = exact.sample((draws,))
    return _score_contenders(prior, theta, x, x_o, reference, seed, max_epochs, exact)


def run_two_moons(seed: int, sims: int, max_epochs: int, draws: int) -> dict:
    from sbi.utils import BoxUniform

    torch.manual_seed(seed)
    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    theta = prior.sample((sims,))
    x = two_moons(theta)
    x_o = torch.zeros(1, 2)
    reference = two_moons_reference(x_o, draws)
    return _score_contenders(prior, theta, x, x_o, reference, seed, max_epochs)


def _mean_se(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"mean": mean, "stderr": math.sqrt(var / n), "values": values}


def summarize(runs: dict) -> dict:
    """Per task and contender: the mean ± standard error over seeds of each score."""
    summary: dict = {}
    for task, by_seed in runs.items():
        summary[task] = {}
        for name in CONTENDERS:
            rows = [by_seed[s][name] for s in by_seed]
            entry = {"c2st": _mean_se([r["c2st"] for r in rows])}
            if "kl" in rows[0]:
                entry["kl"] = _mean_se([r["kl"]["mean"] for r in rows])
            entry["seconds"] = _mean_se([r["seconds"] for r in rows])
            entry["epochs"] = _mean_se([float(r["epochs"]) for r in rows])
            summary[task][name] = entry
        summary[task]["seeds"] = len(by_seed)
    return summary


def table(results: dict) -> str:
    """The Markdown table: per task and contender, KL, C2ST and training time."""
    lines = [
        "| task | estimator | KL(exact ‖ estimate) (nats) | C2ST | epochs | training (s) |",
        "|---|---|---|---|---|---|",
    ]
    for task, entries in results["summary"].items():
        for name in CONTENDERS:
            e = entries[name]
            kl = f"{e['kl']['mean']:.3f} ± {e['kl']['stderr']:.3f}" if "kl" in e else "—"
            lines.append(
                f"| {task} | `{name}` | {kl} | {e['c2st']['mean']:.3f} ± "
                f"{e['c2st']['stderr']:.3f} | {e['epochs']['mean']:.0f} | "
                f"{e['seconds']['mean']:.0f} |"
            )
    seeds = next(iter(results["summary"].values()))["seeds"]
    lines.append(
        f"\nMeans ± standard errors over {seeds} seeds (simulations, observation and "
        f"initialization), {results['simulations']:,} simulations each; C2ST 0.5 is "
        f"indistinguishable from the exact (linear Gaussian) or reference (two moons) "
        f"posterior; time is NPE's training on one thread."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sims, max_epochs, draws = (500, 5, 500) if args.quick else (5000, 2**31 - 1, 2000)
    seeds = range(1 if args.quick else args.seeds)
    start = time.perf_counter()
    runs = {
        "linear_gaussian": {s: run_linear_gaussian(s, sims, max_epochs, draws) for s in seeds},
        "two_moons": {s: run_two_moons(s, sims, max_epochs, draws) for s in seeds},
    }
    env = environment()
    env["versions"]["sbi"] = metadata.version("sbi")
    results = {
        "simulations": sims,
        "draws": draws,
        "dimension": DIM,
        "runs": {t: {str(s): r for s, r in by.items()} for t, by in runs.items()},
        "summary": summarize(runs),
        "environment": env,
        "seconds": time.perf_counter() - start,
    }
    return report_and_save([table(results)], results, args.out)


if __name__ == "__main__":
    main()
