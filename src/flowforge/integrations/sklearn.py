"""``FlowDensity``: a flowforge flow as a scikit-learn density estimator.

It stands where ``sklearn.neighbors.KernelDensity`` and ``sklearn.mixture.GaussianMixture``
stand: ``fit(X)``, ``score_samples(X)`` (log-density per row, in nats, in ``X``'s units),
``score(X)`` (the mean of those: higher is better, so ``GridSearchCV`` can choose by
it) and ``sample(n_samples, random_state)``. Its parameters are plain constructor
arguments (the family, the family's options, the recipe), so ``get_params``,
``set_params``, ``clone``, ``Pipeline`` and ``GridSearchCV`` work as with any estimator.

Inside, ``fit`` standardizes each column (``mean_``, ``scale_``), holds out a random
part of the rows for early stopping, builds the family's flow for ``X``'s width and
trains it with ``flowforge.training.fit`` in float64; ``score_samples`` adds the
standardization's log-determinant, ``-sum(log(scale_))``, so densities are in ``X``'s
units. scikit-learn (the ``workbench`` extra) is imported only here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from flowforge.errors import InputError
from flowforge.evaluate import log_likelihood
from flowforge.families import FAMILIES, POINTS
from flowforge.initialize import initialize_from_data
from flowforge.threads import cpu_threads, training_threads
from flowforge.training import DEFAULT_RECIPE, History, fit
from flowforge.workbench.data import Standardization

__all__ = ["FlowDensity"]

_SEED_RANGE = 2**31 - 1
# The recipe fields ``FlowDensity`` sets itself (the others go through ``recipe_options``).
_OWN_FIELDS = ("epochs", "batch_size", "lr", "patience", "restore_best")


class FlowDensity(DensityMixin, BaseEstimator):
    """A normalizing flow fitted by maximum likelihood, with scikit-learn's density API.

    ``fit`` standardizes every column of ``X`` (``mean_``, ``scale_``: the column's mean
    and population standard deviation; a constant column gets scale 1, as
    ``StandardScaler`` does, and then its density is degenerate: it grows without bound
    as training squeezes the flow onto that value, so drop such columns first). With
    ``early_stopping`` a random ``validation_fraction`` of the rows (at least one) is
    held out, training stops after ``patience`` epochs without a better held-out NLL,
    and the flow keeps the weights of its best held-out epoch; without it every row
    trains for ``epochs`` epochs. Everything random (the split, the flow's initial
    weights, the batches' order) is drawn from ``random_state``, inside a forked torch
    generator, so the same ``random_state`` gives the same flow and torch's global
    random state is left as it was. Training and scoring run in float64 on the CPU,
    with one thread for a small flow (``flowforge.threads``).

    Args:
        family: A point family of ``flowforge.families.FAMILIES``: ``"nsf"`` (the
            default; works for any width, one column included), ``"maf"``, ``"iaf"``,
            ``"realnvp"``, ``"nice"`` or ``"glow"`` (couplings: two columns or more).
        family_options: Keyword arguments of the family's builder (``{"hidden": 32}``);
            ``None``: its defaults. With ``base="mixture"`` the mixture base is fitted to
            the standardized data before training.
        epochs: The most passes over the training rows (0: the untrained flow).
        batch_size: Rows per optimizer step (at most the training rows).
        lr: Adam's peak learning rate (``DEFAULT_RECIPE``'s).
        validation_fraction: The share of rows held out for early stopping, in (0, 1).
        early_stopping: Hold out rows and stop on their NLL (``False``: train on all).
        patience: Epochs without a better held-out NLL before stopping.
        recipe_options: Further ``flowforge.Recipe`` fields (``{"ema": 0.0}``,
            ``{"warmup": 0}``, ``{"schedule": "constant"}``); ``None``: the defaults.
        random_state: An int, a ``numpy.random.RandomState`` or ``None`` (a fresh draw).

    Attributes:
        n_features_in_: The width of ``X``.
        mean_: Each column's mean, ``(n_features_in_,)``.
        scale_: Each column's standard deviation (1 for a constant column).
        flow_: The trained ``NormalizingFlow``, on standardized data, float64.
        history_: The ``flowforge.training.History`` of the run.
        n_iter_: The epochs run (fewer than ``epochs`` when stopped early).

    Example:
        >>> import numpy as np
        >>> from flowforge.integrations.sklearn import FlowDensity
        >>> X = np.random.default_rng(0).normal(size=(200, 2)) * [1.0, 3.0] + [5.0, 0.0]
        >>> density = FlowDensity("realnvp", {"hidden": 8}, epochs=3, random_state=0).fit(X)
        >>> density.score_samples(X[:3]).shape, density.n_iter_
        ((3,), 3)
        >>> density.scale_.round(1)
        array([1., 3.])
        >>> density.sample(4, random_state=1).shape
        (4, 2)
        >>> bool(density.score(X) == density.score_samples(X).mean())
        True
    """

    def __init__(
        self,
        family: str = "nsf",
        family_options: dict[str, Any] | None = None,
        *,
        epochs: int = 200,
        batch_size: int = 256,
        lr: float = 1e-2,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 20,
        recipe_options: dict[str, Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.family = family
        self.family_options = family_options
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.recipe_options = recipe_options
        self.random_state = random_state

    def __sklearn_tags__(self):  # noqa: ANN204 (sklearn.utils.Tags, a class of 1.6+)
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        return tags

    def fit(self, X: Any, y: None = None) -> FlowDensity:
        """Standardize ``X``, hold out a validation part, build the flow and train it.

        Args:
            X: The points, array-like ``(n_samples, n_features)``, finite, two rows or
                more.
            y: Ignored (scikit-learn's convention for unsupervised estimators).

        Returns:
            The fitted estimator.

        Raises:
            ValueError: For ``X`` that is not a finite 2-D array of two rows or more,
                an unknown or image family, bad family options or recipe values.
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        builder, options = self._builder()
        recipe = self._recipe()
        rng = check_random_state(self.random_state)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 1e-12 * np.maximum(np.abs(self.mean_), 1.0), std, 1.0)
        self.standardization_ = Standardization(tuple(self.mean_), tuple(self.scale_))
        points = torch.as_tensor(self.standardization_.transform(X))
        train, validation = self._split(points, rng)
        init_seed, order_seed = (int(s) for s in rng.randint(_SEED_RANGE, size=2))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            flow = _build(builder, X.shape[1], options)
            initialize_from_data(flow, train, seed=init_seed)
            self.history_: History = fit(
                flow,
                train,
                recipe.replace(batch_size=min(recipe.batch_size, len(train))),
                validation=validation,
                seed=order_seed,
                progress=False,
            )
        self.flow_ = flow
        self.n_iter_ = self.history_.epochs
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """The log-density of every row of ``X``, in nats, in ``X``'s units.

        Args:
            X: Points of the fitted width, array-like ``(n_samples, n_features_in_)``.

        Returns:
            ``(n_samples,)`` float64: the flow's log-density of the standardized rows
            minus ``sum(log(scale_))``, the standardization's log-determinant.
        """
        check_is_fitted(self, "flow_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        points = torch.as_tensor(self.standardization_.transform(X))
        with cpu_threads(training_threads(self.flow_, max(len(X), 1))):
            log_prob = log_likelihood(self.flow_, points).double().numpy()
        return log_prob + self.standardization_.log_abs_det

    def score(self, X: Any, y: None = None) -> float:
        """The mean log-likelihood of the rows of ``X`` (nats per row; higher is better).

        The mean, as ``GaussianMixture.score`` (``KernelDensity.score`` returns the sum):
        a mean does not grow with the number of rows, so scores of folds of different
        sizes compare, and it is what the issue asks for (``GridSearchCV`` picks the
        largest).

        Args:
            X: Points of the fitted width, array-like ``(n_samples, n_features_in_)``.
            y: Ignored.

        Returns:
            ``score_samples(X).mean()``.
        """
        return float(self.score_samples(X).mean())

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draw ``n_samples`` points from the fitted density, in ``X``'s units.

        Args:
            n_samples: How many points (``>= 1``).
            random_state: An int, a ``RandomState`` or ``None`` (a fresh draw); torch's
                global random state is left as it was.

        Returns:
            ``(n_samples, n_features_in_)`` float64.
        """
        check_is_fitted(self, "flow_")
        if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        seed = int(check_random_state(random_state).randint(_SEED_RANGE))
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            z = self.flow_.sample(int(n_samples)).numpy()
        return self.standardization_.inverse_transform(z)

    def _builder(self) -> tuple[Any, dict[str, Any]]:
        """The family's builder and its options, or a one-line ``InputError``."""
        family = FAMILIES.get(self.family) if isinstance(self.family, str) else None
        points = sorted(name for name, f in FAMILIES.items() if f.data == POINTS)
        if family is None:
            raise InputError(f"unknown family {self.family!r}; choose one of {points}")
        if family.data != POINTS:
            raise InputError(
                f"family {self.family!r} models {family.data}, FlowDensity models rows of "
                f"numbers: choose one of {points}"
            )
        options = dict(self.family_options or {})
        if "context_width" in options:
            raise InputError("FlowDensity models unconditional densities: drop context_width")
        return family.build, options

    def _recipe(self):  # noqa: ANN202 (a flowforge.training.Recipe)
        """The recipe: the defaults, ``recipe_options``, then this estimator's fields."""
        extra = dict(self.recipe_options or {})
        clash = sorted(set(extra) & set(_OWN_FIELDS))
        if clash:
            raise InputError(
                f"set {', '.join(clash)} as FlowDensity parameters, not in recipe_options"
            )
        if self.early_stopping not in (True, False):
            raise InputError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        patience = self.patience if self.early_stopping else None
        return DEFAULT_RECIPE.replace(
            **extra,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=patience,
            restore_best=bool(self.early_stopping),
        )

    def _split(
        self, points: torch.Tensor, rng: np.random.RandomState
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The training rows and (with early stopping) a random validation part."""
        if not self.early_stopping:
            return points, None
        fraction = self.validation_fraction
        if not (isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0):
            raise InputError(f"validation_fraction must be in (0, 1), got {fraction!r}")
        n = len(points)
        held = min(max(1, math.ceil(fraction * n)), n - 1)
        order = torch.as_tensor(rng.permutation(n))
        return points[order[held:]], points[order[:held]]


def _build(builder: Any, width: int, options: dict[str, Any]) -> torch.nn.Module:
    """The family's flow for ``width`` columns in float64, or a one-line ``InputError``."""
    try:
        return builder(width, **options).double()
    except TypeError as error:
        raise InputError(f"bad family_options for {builder.__name__}: {error}") from None
    except ValueError as error:
        hint = " (for one column use family='nsf' or 'maf')" if width == 1 else ""
        raise InputError(f"cannot build {builder.__name__}({width}, ...): {error}{hint}") from None
