"""Run a comparison: fit every model on the same data and score it against the truth.

With a known density (the moons, eight Gaussians, checkerboard, circles, rings) every
model with a likelihood gets its gap to the true entropy and the paired KL; every model,
and a fresh sample of the truth as the floor, gets sample distances to the held-out set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from flowforge.evaluate import NLLEstimate, nll_estimate
from flowforge.workbench.baselines import Baseline
from flowforge.workbench.comparison.fair_time import TimeRule, fit_at_least, slowest
from flowforge.workbench.comparison.plan import Plan
from flowforge.workbench.data.moons import two_moons
from flowforge.workbench.data.registry import dataset
from flowforge.workbench.data.true_distribution import TrueDistribution
from flowforge.workbench.scoring.metrics import (
    PairedEstimate,
    SampleReferee,
    SampleScores,
    median_bandwidth,
    nll_gap,
    paired_kl,
)

TRUTH = "truth (fresh sample)"
MAKE_MOONS = "make_moons (fresh sample)"


@dataclass(frozen=True)
class Setup:
    """The data and scoring sizes of a comparison (points, nats, model units).

    ``dataset`` names a set of ``flowforge.workbench.data.DATASETS``; ``noise`` is the moons' noise
    (``None`` gives the moons 0.1; the toys take none and keep ``None``).
    """

    n_train: int = 100_000
    n_heldout: int = 20_000
    noise: float | None = None
    samples: int = 10_000
    validation_fraction: float = 0.1
    entropy_samples: int = 200_000
    seed: int = 0
    dataset: str = "two_moons"

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_heldout, self.samples, self.entropy_samples) < 10:
            raise ValueError(f"every sample size must be at least 10, got {self}")
        # a known data set and options it takes; the moons' default noise filled in
        object.__setattr__(self, "noise", self.data_options().get("noise"))
        if self.noise is not None and not (self.noise > 0 and math.isfinite(self.noise)):
            raise ValueError(
                f"noise must be positive, got {self.noise}: without noise the moons are "
                "curves, with no density to score models against"
            )
        if self.samples > self.n_heldout:
            raise ValueError(
                f"samples ({self.samples}) must not exceed n_heldout ({self.n_heldout}): "
                "each model's samples are compared with as many held-out points"
            )
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )

    def data_options(self) -> dict[str, float]:
        """The data set's options (the moons' noise), checked; ``ValueError`` otherwise."""
        options = {} if self.noise is None else {"noise": self.noise}
        entry = dataset(self.dataset)
        entry.check_options(options)
        return {**entry.options, **options}


@dataclass
class Row:
    """One line of the table: a model's scores, or a reference sample's (``kind="floor"``).

    ``nll`` is the held-out NLL; ``gap`` that minus the true entropy; ``kl`` the paired
    estimate of ``KL(truth ‖ model)`` on the held-out points; ``outside`` the share of
    held-out points with log-likelihood ``-inf``. All ``None`` without a likelihood.
    """

    name: str
    kind: str
    distances: SampleScores
    nll: NLLEstimate | None = None
    gap: PairedEstimate | None = None
    kl: PairedEstimate | None = None
    outside: float | None = None
    train_seconds: float | None = None
    sample_seconds: float | None = None
    summary: dict = field(default_factory=dict)


@dataclass
class Comparison:
    """Everything a comparison produced: the table, and what its figure needs."""

    setup: Setup
    plan: Plan
    truth: TrueDistribution
    entropy: NLLEstimate | None  # both None without a known density
    heldout_truth: NLLEstimate | None
    bandwidths: dict[str, float]
    rows: list[Row]
    models: dict[str, Baseline]
    samples: dict[str, Tensor]
    train_points: Tensor


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _likelihood_scores(
    model: Baseline, heldout: Tensor, truth_lp: Tensor | None, entropy: NLLEstimate | None
) -> dict:
    """Held-out NLL and share outside the support; gap and paired KL if the truth is known."""
    if not model.has_likelihood:
        return {}
    lp = model.log_prob(heldout).double()
    nll = nll_estimate(lp)
    scores = {"nll": nll, "outside": float(torch.isneginf(lp).double().mean())}
    if truth_lp is not None:
        scores.update(gap=nll_gap(nll, entropy), kl=paired_kl(truth_lp, lp))
    return scores


class Runner:
    """Holds the data, the truth and the referee while models are fitted and scored."""

    def __init__(self, setup: Setup, plan: Plan) -> None:
        self.setup, self.plan = setup, plan
        entry, options = dataset(setup.dataset), setup.data_options()
        data, heldout = entry.splits(setup.n_train, setup.n_heldout, seed=setup.seed, **options)
        n_val = max(2, round(setup.validation_fraction * setup.n_train))
        self.train, self.validation = data.points[:-n_val], data.points[-n_val:]
        self.heldout = heldout.points
        self.standardization = data.standardization
        self.truth = entry.distribution(data.standardization, {"n_samples": len(data), **options})
        self.entropy, self.truth_lp = None, None
        if self.truth.has_density:
            self.entropy = self.truth.entropy(setup.entropy_samples, seed=setup.seed + 1)
            self.truth_lp = self.truth.log_prob(self.heldout)
        reference = self.heldout[: setup.samples]
        self.bandwidths = {
            "median": median_bandwidth(reference, seed=setup.seed),
            "fine": self.truth.noise_scale,
        }
        self.referee = SampleReferee(reference, self.bandwidths)

    def floor_rows(self) -> tuple[list[Row], dict[str, Tensor]]:
        """Distances of a fresh sample of the truth (random angles), with its own scores
        where its density is known, and for the moons of a fresh ``make_moons`` draw."""
        n, seed = self.setup.samples, self.setup.seed
        truth_sample = self.truth.sample(n, seed=seed + 2)
        likelihood = {}
        if self.truth_lp is not None:
            nll = nll_estimate(self.truth_lp)
            zero = PairedEstimate(0.0, 0.0, len(self.truth_lp))
            likelihood = {"nll": nll, "gap": nll_gap(nll, self.entropy), "kl": zero}
            likelihood["outside"] = 0.0
        rows = [Row(TRUTH, "floor", self.referee.score(truth_sample), **likelihood)]
        if self.setup.dataset == "two_moons":  # make_moons spaces its angles evenly
            noise = self.setup.data_options()["noise"]
            moons = two_moons(n, noise, seed=seed + 3, standardization=self.standardization)
            rows.append(Row(MAKE_MOONS, "floor", self.referee.score(moons.points)))
        return rows, {TRUTH: truth_sample}

    def model_row(self, name: str) -> tuple[Row, Baseline, Tensor]:
        """Fit model ``name`` (see ``MODELS``), score its likelihood and its samples."""
        return self.score(name, self.plan.build(name))

    def fit(self, model: Baseline) -> float:
        """Fit ``model`` on the training split; its training time in seconds."""
        return _timed(lambda: model.fit(self.train, self.validation))[1]

    def flow_row(self, others: Sequence[Row]) -> tuple[Row, Baseline, Tensor]:
        """Fit the notebook's flow by the time rule (``fair_time``) against ``others``."""
        name, seconds = slowest([(r.name, r.train_seconds) for r in others])
        rule = TimeRule(name, seconds, fixed_epochs=self.plan.flow_epochs is not None)
        floor = self.plan.epochs("flow")
        model, train_s = fit_at_least(self.plan.flow, self.fit, floor, rule)
        row, model, sample = self.scored("flow", model, train_s)
        row.summary["time_rule"] = rule.to_dict()
        return row, model, sample

    def score(self, name: str, model: Baseline) -> tuple[Row, Baseline, Tensor]:
        """Fit an unfitted ``model`` on the training split and score it as row ``name``."""
        return self.scored(name, model, self.fit(model))

    def scored(self, name: str, model: Baseline, train_s: float) -> tuple[Row, Baseline, Tensor]:
        """Score the fitted ``model`` (trained in ``train_s`` seconds) as row ``name``."""
        sample, sample_s = _timed(lambda: model.sample(self.setup.samples, self.setup.seed + 4))
        scores = _likelihood_scores(model, self.heldout, self.truth_lp, self.entropy)
        row = Row(
            name,
            "model",
            self.referee.score(sample),
            train_seconds=train_s,
            sample_seconds=sample_s,
            summary=model.summary(),
            **scores,
        )
        return row, model, sample


def _progress_line(row: Row) -> str:
    """What one fitted model scored, and how long it trained (for the flow: against what)."""
    nll = "no likelihood" if row.nll is None else f"NLL {row.nll.mean:.4f}"
    nll += "" if row.kl is None else f", KL {row.kl}"
    line = f"{row.name}: {nll}; trained in {row.train_seconds:.1f} s"
    rule = row.summary.get("time_rule")
    if rule and rule["slowest_other_model"] is not None:
        relation = "at least" if rule["met"] else "LESS than"
        line += (
            f" ({row.summary['epochs']} epochs), {relation} the slowest other model, "
            f"{rule['slowest_other_model']} ({rule['target_seconds']:.1f} s)"
        )
    return line


def run_comparison(
    models: Sequence[str],
    plan: Plan,
    setup: Setup | None = None,
    log: Callable[[str], None] = print,
) -> Comparison:
    """Fit each named model on the same training data and score all on the same held-out set.

    The notebook's ``"flow"``, if named, is fitted after the others, for at least the
    training time of the slowest of them (``fair_time``); the rows keep the order of
    ``models``. ``log`` receives one line per stage (the true entropy first).
    """
    setup = setup or Setup()
    runner = Runner(setup, plan)
    if runner.entropy is None:
        log(f"{runner.truth.no_density_message()}; scored by sample distances")
    else:
        log(f"true entropy H = {runner.entropy} (Monte Carlo standard error)")
    rows, samples = runner.floor_rows()
    fitted, model_rows = {}, {}
    for name in [m for m in models if m != "flow"] + [m for m in models if m == "flow"]:
        if name == "flow":
            row, model, sample = runner.flow_row(list(model_rows.values()))
        else:
            row, model, sample = runner.model_row(name)
        model_rows[name] = row
        fitted[name], samples[name] = model, sample
        log(_progress_line(row))
    rows.extend(model_rows[name] for name in models)
    return Comparison(
        setup,
        plan,
        runner.truth,
        runner.entropy,
        None if runner.truth_lp is None else nll_estimate(runner.truth_lp),
        runner.bandwidths,
        rows,
        fitted,
        samples,
        runner.train,
    )
