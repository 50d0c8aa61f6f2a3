"""Every data set flowforge trains on, by name: how to draw it and its true distribution.

``DATASETS`` maps a name (what ``--dataset`` and a run's ``config.json`` record) to a
``DataSet``: the notebook's ``two_moons`` first, then the toy suite (``toys``), then
the images of scikit-learn's ``digits``. A run's data record is ``{"name": ...,
"n_samples": ..., "n_heldout": ..., **options}``; ``two_moons`` takes the option
``noise``, the toys none. The digits have a fixed split, so their record is just
``{"name": "digits"}``.

``ALIASES`` maps the names the papers' own code gives the toys (FFJORD's and the
neural-spline-flow code's ``8gaussians``, ``2spirals``, ``swissroll``, ``moons``) to
these names; ``dataset`` accepts either and returns the entry under its own name, which
is what a run records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from flowforge.workbench.data.digits import DIGITS, ImageFormat, digits_train_test
from flowforge.workbench.data.moons import two_moons_splits
from flowforge.workbench.data.moons_density import MoonsDensity, outer_fraction
from flowforge.workbench.data.points import PointData
from flowforge.workbench.data.standardize import Standardization
from flowforge.workbench.data.toys import TOYS, ToyDistribution, toy_splits
from flowforge.workbench.data.true_distribution import TrueDistribution


@dataclass(frozen=True)
class DataSet:
    """One data set: ``splits`` draws a training and a held-out set (the held-out one
    standardized with the training statistics); ``distribution`` gives the true
    distribution of a data record in model units (``None`` when there is none).

    ``options`` are the data options the set takes, with their defaults; ``conditional``
    says whether flowforge knows ``p(x | label)`` for it (only the moons). ``image`` is
    set for image data (rows are flattened images of discrete pixels, split once for
    good, so ``splits`` takes no sizes); it is ``None`` for sets of points. ``recipe``
    holds the training defaults in which the set differs from ``DEFAULT_RECIPE``.
    """

    name: str
    make_splits: Callable[..., tuple[PointData, PointData]]
    make_distribution: Callable[[Standardization, Mapping[str, Any]], TrueDistribution | None]
    options: Mapping[str, float] = field(default_factory=dict)
    conditional: bool = False
    image: ImageFormat | None = None
    recipe: Mapping[str, Any] = field(default_factory=dict)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """``ValueError`` for an option this set does not take, naming those it does."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            takes = ", ".join(self.options) or "none"
            raise ValueError(
                f"data set {self.name} takes no option {', '.join(unknown)} (its options: {takes})"
            )

    def splits(
        self,
        n_samples: int | None = None,
        n_heldout: int | None = None,
        *,
        seed: int = 0,
        **options: Any,
    ) -> tuple[PointData, PointData]:
        """``n_samples`` training and ``n_heldout`` held-out points, standardized; seeded.

        An image set has a fixed split: it takes no sizes and returns its training and
        test sets (pixel units, unstandardized).
        """
        self.check_options(options)
        if self.image is None and (n_samples is None or n_heldout is None):
            raise ValueError(f"data set {self.name} needs n_samples and n_heldout")
        return self.make_splits(n_samples, n_heldout, seed=seed, **{**self.options, **options})

    def distribution(
        self, standardization: Standardization | None, record: Mapping[str, Any]
    ) -> TrueDistribution | None:
        """The true distribution of the data ``record`` describes, in model units."""
        return self.make_distribution(standardization, record)


def _moons(standardization: Standardization | None, record: Mapping[str, Any]):
    noise = float(record.get("noise", 0.0))
    if not noise > 0:  # points on two curves: no density in the plane
        return None
    return MoonsDensity(noise, standardization, outer_fraction(int(record.get("n_samples", 2))))


def _toy_distribution(name: str, standardization: Standardization | None, record: Mapping):
    return ToyDistribution(TOYS[name], standardization)


def _toy(name: str) -> DataSet:
    return DataSet(name, partial(toy_splits, name), partial(_toy_distribution, name))


# 1,257 training images: small batches, a lower peak rate than for 2-D points, and few
# epochs (about 800 steps), which the cosine decay ends before the model overfits. The
# The digits benchmark's table was measured with the final weights, not a weight average.
DIGITS_RECIPE = {"epochs": 40, "batch_size": 64, "lr": 3e-3, "warmup": 50, "ema": 0.0}

DATASETS: dict[str, DataSet] = {
    "two_moons": DataSet(
        "two_moons",
        two_moons_splits,
        _moons,
        {"noise": 0.1},
        conditional=True,
    ),
    **{name: _toy(name) for name in TOYS},
    "digits": DataSet(
        "digits",
        digits_train_test,
        lambda standardization, record: None,  # no known density
        image=DIGITS,
        recipe=DIGITS_RECIPE,
    ),
}


# Other names for the sets, as the papers' code spells them (``checkerboard``, ``circles``,
# ``pinwheel`` and ``rings`` are spelled the same there and here).
ALIASES: dict[str, str] = {
    "8gaussians": "eight_gaussians",
    "2spirals": "two_spirals",
    "swissroll": "swiss_roll",
    "moons": "two_moons",
}


def names_help(names: Sequence[str] | None = None) -> str:
    """``names`` (default: every set), then the aliases of those among them, for --help."""
    names = list(DATASETS) if names is None else list(names)
    aliases = [f"{alias} = {name}" for alias, name in ALIASES.items() if name in names]
    also = f" (also {', '.join(aliases)})" if aliases else ""
    return ", ".join(names) + also


def dataset(name: str) -> DataSet:
    """The data set called ``name`` or one of its ``ALIASES``; ``ValueError`` listing the
    known names otherwise."""
    try:
        return DATASETS[ALIASES.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: {names_help()}") from None
