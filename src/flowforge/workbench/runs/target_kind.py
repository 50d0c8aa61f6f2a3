"""The target run: a flow trained as a sampler of a density known up to a constant.

``flowforge train --target NAME`` makes one. Its ``config.json`` names the target
(``flowforge.targets``) under ``target``, the sampler's options (``training.sampler``)
under ``model`` and ``fit_target``'s under ``recipe``; there is no data (``data`` names
the target) and the standardization is the identity, so ``flowforge sample`` writes
points in the target's own coordinates. ``metrics.json`` holds the diagnosis
(``flowforge.importance.diagnose``: ESS and log Ẑ with standard errors from the flow's own
samples, the broad proposal's log Ẑ beside it, the exact log Ẑ error and reverse KL where
the normalizer is known, the mass per mode for mixtures) and, under ``heldout``, the
NLL of exact samples of the target where it can draw them (the flow's entropy estimate
otherwise), which ``eval`` and ``sample`` check like any run's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from flowforge.evaluate import NLLEstimate, nll_estimate
from flowforge.workbench.data.standardize import Standardization
from flowforge.workbench.runs.config import RunConfig
from flowforge.workbench.runs.kinds import Points

MODEL = "sampler"  # config.json's model name for a target run
DIAGNOSIS_SAMPLES = 100_000
HELDOUT_SAMPLES = 20_000
GRID = 200  # points per axis of the density figures


def target_of(config: RunConfig):
    """The run's target, rebuilt from ``config.json``'s ``target`` entry."""
    import flowforge.targets as targets

    entry = dict(config.extra["target"])
    return targets.get(entry.pop("name"), **entry)


def target_config(
    name: str, model: Mapping, recipe: Mapping, seed: int, samples: int | None = None
) -> RunConfig:
    """The configuration of a new target run (``samples``: the diagnosis's, default
    ``DIAGNOSIS_SAMPLES``)."""
    import flowforge.targets as targets
    from flowforge.training.sampler import resolve_df

    target = targets.get(name)
    # the base's degrees of freedom as resolved now, so the run rebuilds as it trained
    df = resolve_df(model.get("df", "auto"), model.get("base", "mixture"), target.bounds)
    return RunConfig(
        model=MODEL,
        model_options={**model, "df": df},
        data={"name": f"target:{name}"},
        standardization=Standardization((0.0,) * target.dim, (1.0,) * target.dim),
        recipe=dict(recipe),
        seed=seed,
        device="cpu",
        extra={"target": {"name": name}, "diagnosis": {"samples": samples or DIAGNOSIS_SAMPLES}},
    )


def build_sampler(config: RunConfig) -> torch.nn.Module:
    """A fresh sampler for the run's target, as its ``model`` options say (a run that
    records no ``df`` had Gaussian components: they predate the Student-t ones)."""
    from flowforge.training.sampler import sampler

    return sampler(target_of(config), **{"df": None, **config.model_options})


def heldout_estimate(model: torch.nn.Module, target, seed: int) -> tuple[NLLEstimate, str]:
    """The NLL of ``HELDOUT_SAMPLES`` exact samples of the target under the flow (what
    ``heldout`` records), or, for a target that cannot be sampled, of the flow's own
    samples (its entropy); and which of the two it is."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        try:
            x = target.sample(HELDOUT_SAMPLES, generator=generator).float()
            what = "exact samples of the target"
        except NotImplementedError:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + 1)
                x = model.sample(HELDOUT_SAMPLES)
            what = "the flow's own samples (its entropy)"
        return nll_estimate(model.log_prob(x).double()), what


class TargetPoints(Points):
    """A run whose model samples a target: scored by its diagnosis, not by data."""

    default_model = MODEL
    heldout_name = "exact samples of the target"
    nll_name = "NLL of exact samples of the target (nats per point)"

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def context(self, data) -> tuple[torch.Tensor, ...]:
        return ()

    def scores(self, config, model, scored, entropy=None) -> dict[str, Any]:
        return {}

    def figure_set(self) -> tuple[Callable[..., dict], Mapping[str, tuple[str, Any]]]:
        from flowforge.workbench.runs.target_figures import FIGURES, target_figures

        return target_figures, FIGURES

    def figures(self, model, train_points, metrics: Mapping, seed: int) -> dict:
        draw, _ = self.figure_set()
        return draw(model, target_of(self.config), metrics, seed=seed)

    def report_rows(self, config: RunConfig, metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
        from flowforge.workbench.report import plus_minus

        d = metrics.get("diagnosis", {})
        rows = [
            ("warnings", "; ".join(d.get("warnings", [])) or "none"),
            ("ESS of the flow's own samples (fraction)", d.get("ess")),
            ("log Ẑ from the flow's samples", plus_minus(d, "log_z", "log_z_se")),
            ("log Ẑ from the broad proposal", plus_minus(d, "broad_log_z", "broad_log_z_se")),
            ("the two disagree", d.get("disagree")),
            ("log Ẑ − log Z (exact normalizer)", d.get("log_z_error")),
            ("reverse KL(q ‖ p) (nats)", d.get("reverse_kl")),
            ("modes covered (mass within a factor 2 of the weight)", d.get("modes_covered")),
            ("fraction of the grid where log q is finite", d.get("finite_fraction")),
            (self.nll_name, plus_minus(metrics.get("heldout", {}), "nll", "stderr")),
            ("training CPU seconds", metrics.get("train_seconds")),
        ]
        return [(name, value) for name, value in rows if value is not None]

    def summary(self, estimate: NLLEstimate, epochs: int, heldout: Mapping) -> list[str]:
        return [f"trained {epochs} rounds; NLL of {heldout.get('what')}: {estimate.mean:.4f}"]

    def eval_text(self, source: str, diagnosis) -> str:
        return f"{source}:\n" + diagnosis.summary()


def diagnosis_of(model: torch.nn.Module, config: RunConfig):
    """The run's ``Diagnosis``, with the samples its config names, drawn from its seed."""
    from flowforge.importance import diagnose

    n = int(config.extra.get("diagnosis", {}).get("samples", DIAGNOSIS_SAMPLES))
    generator = torch.Generator().manual_seed(config.seed + 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 2)
        return diagnose(model, target_of(config), n, generator=generator)


def target_metrics(model, history, config: RunConfig, seconds: float) -> dict[str, Any]:
    """``metrics.json`` of a finished target run."""
    from flowforge.workbench.runs.config import parameter_count
    from flowforge.workbench.runs.experiment import versions

    diagnosis = diagnosis_of(model, config)
    estimate, what = heldout_estimate(model, target_of(config), config.seed)
    return {
        "train_loss": history.train_nll,
        "train_nll": history.train_nll,
        "heldout_nll": [math.nan] * history.epochs,
        "epoch_seconds": history.seconds,
        "epochs": history.epochs,
        "final_train_nll": history.train_nll[-1] if history.train_nll else math.nan,
        "diagnosis": diagnosis.as_dict(),
        "heldout": {"nll": estimate.mean, "stderr": estimate.stderr, "n": estimate.n, "what": what},
        "train_seconds": float(sum(history.seconds)),
        "wall_seconds": seconds,
        "parameters": parameter_count(model),
        "versions": versions(),
    }


def train_target_run(folder: Path, config: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or continue, from its checkpoint) the target run in ``folder``, then write
    its weights, metrics, figures and report; returns the metrics."""
    import time

    from flowforge.training.target import fit_target
    from flowforge.workbench.files import write_json
    from flowforge.workbench.runs.checkpoint import restore_rng, save_checkpoint, save_weights
    from flowforge.workbench.runs.config import CHECKPOINT, METRICS, WEIGHTS
    from flowforge.workbench.runs.experiment import read_checkpoint, write_outputs

    started = time.perf_counter()
    checkpoint = read_checkpoint(folder)
    torch.manual_seed(config.seed)
    model = build_sampler(config)
    resume = None
    if checkpoint is not None:
        restore_rng(checkpoint.rng)
        resume = checkpoint.state

    def keep(state) -> None:
        save_checkpoint(folder / CHECKPOINT, state)

    history = fit_target(
        model,
        target_of(config),
        **config.recipe,
        seed=config.seed,
        callbacks=[keep],
        resume=resume,
        progress=progress,
    )
    save_weights(folder / WEIGHTS, model.state_dict())
    metrics = target_metrics(model, history, config, time.perf_counter() - started)
    metrics["resumed_from_epoch"] = resume.epoch if resume is not None else 0
    write_json(folder / METRICS, metrics)
    write_outputs(folder, model, torch.empty(0, model_width(config)), config, metrics)
    return metrics


def model_width(config: RunConfig) -> int:
    return config.standardization.width
