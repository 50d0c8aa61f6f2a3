"""Importance-sampling diagnostics of a sampler (a flow) for a target known up to a constant.

The flow's own weights ``w = p̃(x)/q(x)``, ``x ~ q``, give an effective sample size and
``log Ẑ`` with a standard error, but they cannot see a mode the flow never visits: a
flow that keeps one of two moons reports an ESS near one and a tiny error bar while
``log Ẑ`` is off by ``log 2``. So :func:`diagnose` also estimates ``Z`` with a
second, *broad* proposal that reaches where the flow does not: by default the
defensive mixture (Hesterberg 1995) of the flow and a uniform on the target's box
(2-D), or of the flow and an inflated Gaussian matched to its samples (more
dimensions, where it sees less). It warns when the two estimates disagree and, where
the target knows them, reports the exact reverse KL, the error of ``log Ẑ``, the mass
per mode and the modes covered.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from flowforge.errors import InputError
from flowforge.targets.base import Target

CHUNK = 10_000
# Below this ESS (a fraction of the samples) the flow's own log Z-hat and its error bar
# rest on a handful of weights: ``diagnose`` warns and flags the run.
LOW_ESS = 0.01
__all__ = [
    "Defensive",
    "Diagnosis",
    "Gaussian",
    "Uniform",
    "broad_proposal",
    "diagnose",
    "estimate",
    "importance_weights",
]


def importance_weights(log_target: Tensor, log_proposal: Tensor) -> Tensor:
    """``log w = log p̃ - log q`` in float64, shape ``(n,)``.

    Args:
        log_target: The target's unnormalized log-density at the proposal's samples.
        log_proposal: The proposal's normalized log-density there.

    Example:
        >>> importance_weights(torch.tensor([0.0, -1.0]), torch.tensor([-1.0, -1.0]))
        tensor([1., 0.], dtype=torch.float64)
    """
    if log_target.shape != log_proposal.shape or log_target.dim() != 1:
        raise InputError(
            f"expected two (n,) log-densities, got {tuple(log_target.shape)} and "
            f"{tuple(log_proposal.shape)}"
        )
    if bool(torch.isnan(log_target).any() or torch.isnan(log_proposal).any()):
        raise InputError("a log-density is NaN: check the target and the proposal at their samples")
    return log_target.double() - log_proposal.double()


def estimate(log_w: Tensor) -> tuple[float, float, float]:
    """``(log Ẑ, its standard error, ESS / n)`` from log-weights (delta method for the error).

    Example:
        >>> log_z, se, ess = estimate(torch.zeros(100, dtype=torch.float64))
        >>> log_z, se, ess
        (0.0, 0.0, 1.0)
    """
    n = len(log_w)
    top = float(log_w.max())
    if n == 0 or top == -math.inf:
        return -math.inf, math.inf, 0.0
    w = (log_w - top).exp()
    mean = float(w.mean())
    se = float(w.std(unbiased=True)) / math.sqrt(n) / mean if n > 1 else math.inf
    return top + math.log(mean), se, float(w.sum() ** 2 / (n * (w**2).sum()))


class Uniform:
    """The uniform distribution on a box ``[low, high]``."""

    def __init__(self, low: Tensor, high: Tensor) -> None:
        self.low, self.high = low.double(), high.double()
        self.log_density = -float((self.high - self.low).log().sum())

    def sample_and_log_prob(self, n: int, generator=None) -> tuple[Tensor, Tensor]:
        u = torch.rand(n, len(self.low), generator=generator, dtype=torch.float64)
        return self.low + (self.high - self.low) * u, self.log_prob(torch.empty(n, 0))

    def log_prob(self, x: Tensor) -> Tensor:
        if x.shape[1] == 0:
            return torch.full((len(x),), self.log_density, dtype=torch.float64)
        inside = ((x >= self.low) & (x <= self.high)).all(1)
        return torch.where(inside, self.log_density, -math.inf).double()


class Gaussian:
    """A Gaussian with a mean and a covariance (by its Cholesky factor)."""

    def __init__(self, mean: Tensor, chol: Tensor) -> None:
        self.mean, self.chol = mean.double(), chol.double()
        d = len(mean)
        self.log_norm = -0.5 * d * math.log(2 * math.pi) - float(self.chol.diagonal().log().sum())

    def sample_and_log_prob(self, n: int, generator=None) -> tuple[Tensor, Tensor]:
        z = torch.randn(n, len(self.mean), generator=generator, dtype=torch.float64)
        return self.mean + z @ self.chol.T, self.log_norm - 0.5 * (z**2).sum(1)

    def log_prob(self, x: Tensor) -> Tensor:
        z = torch.linalg.solve_triangular(self.chol, (x.double() - self.mean).T, upper=False).T
        return self.log_norm - 0.5 * (z**2).sum(1)


def broad_proposal(target: Target, samples: Tensor | None = None, kind: str = "auto"):
    """The second proposal :func:`diagnose` checks the flow against (``kind="defensive"``,
    its default, is built by :func:`diagnose`, which has the flow).

    ``kind``: ``"uniform"`` on ``target.bounds``; ``"gaussian"``, a Gaussian over the
    bounds (centred, standard deviation a quarter of the box's side); ``"matched"``, the
    flow's ``samples``' mean and covariance with the scale inflated by
    ``1 + 1.4/sqrt(dim)`` (so that on a Gaussian target the ESS stays near 10 % or more);
    ``"auto"``, the uniform for a 2-D target with bounds, else the matched Gaussian.
    """
    if kind == "auto":
        kind = "uniform" if target.dim == 2 and target.bounds is not None else "matched"
    if kind in ("uniform", "gaussian") and target.bounds is None:
        raise InputError(f"target {target.name!r} has no bounds: use broad='matched'")
    if kind == "uniform":
        return Uniform(*target.bounds)
    if kind == "gaussian":
        low, high = (b.double() for b in target.bounds)
        return Gaussian((low + high) / 2, torch.diag((high - low) / 4))
    if kind == "matched":
        if samples is None:
            raise InputError("broad='matched' needs the flow's samples")
        x = samples.double()
        cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1]) + 1e-9 * torch.eye(x.shape[1])
        inflate = 1 + 1.4 / math.sqrt(target.dim)
        return Gaussian(x.mean(0), inflate * torch.linalg.cholesky(cov))
    raise InputError(f"unknown broad proposal {kind!r}; choose auto, uniform, gaussian or matched")


class Defensive:
    """Defensive importance sampling (Hesterberg 1995): ``α q + (1 - α) u``, the flow mixed
    with a broad proposal ``u``; needs the flow's ``log_prob``."""

    def __init__(self, flow, broad, dtype: torch.dtype, alpha: float = 0.5) -> None:
        self.flow, self.broad, self.alpha, self.dtype = flow, broad, alpha, dtype

    def sample_and_log_prob(self, n: int, generator=None) -> tuple[Tensor, Tensor]:
        m = int(
            torch.binomial(torch.tensor(float(n)), torch.tensor(self.alpha), generator=generator)
        )
        x = self.broad.sample_and_log_prob(n - m, generator)[0]
        if m:
            x = torch.cat([_draw(self.flow, m)[0], x])
        return x, self.log_prob(x)

    def log_prob(self, x: Tensor) -> Tensor:
        # Where the flow's log_prob is NaN or +inf (far from its samples), only u counts.
        q = _flow_log_prob(self.flow, x, self.dtype).nan_to_num(nan=-math.inf, posinf=-math.inf)
        q = q + math.log(self.alpha)
        return torch.logaddexp(q, self.broad.log_prob(x) + math.log1p(-self.alpha))


def _draw(sampler, n: int) -> tuple[Tensor, Tensor, torch.dtype]:
    """``n`` samples and their log-densities, chunk by chunk, without autograd, in float64,
    and the dtype the sampler works in."""
    xs, lqs, dtype = [], [], torch.float64
    with torch.no_grad():
        for start in range(0, n, CHUNK):
            x, lq = sampler.sample_and_log_prob(min(CHUNK, n - start))
            dtype = x.dtype
            xs.append(x.double())
            lqs.append(lq.double())
    return torch.cat(xs), torch.cat(lqs), dtype


def _flow_log_prob(flow, x: Tensor, dtype: torch.dtype) -> Tensor:
    """``flow.log_prob`` in float64, computed in the flow's ``dtype``, chunk by chunk."""
    with torch.no_grad():
        return torch.cat([flow.log_prob(c.to(dtype)).double() for c in x.split(CHUNK)])


def _target_log_prob(target: Target, x: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.cat([target.log_prob(c) for c in x.split(CHUNK)]).double()


@dataclass
class Diagnosis:
    """What :func:`diagnose` found. Log-normalizers in nats; ESS as a fraction of ``n``.

    ``disagree`` is set when the flow's and the broad proposal's ``log Ẑ`` differ by more
    than three combined standard errors plus the tolerance, when the flow's ESS is below
    ``LOW_ESS`` (its own estimate rests on a few weights), or when a known mode's mass is
    off by more than a factor of two; ``warnings`` says which, first.
    """

    n: int
    ess: float
    log_z: float
    log_z_se: float
    broad: str
    broad_log_z: float
    broad_log_z_se: float
    broad_ess: float
    disagree: bool
    warnings: list[str] = field(default_factory=list)
    log_normalizer: float | None = None
    reverse_kl: float | None = None
    log_z_error: float | None = None
    mode_mass: Tensor | None = None
    modes_covered: int | None = None
    finite_fraction: float | None = None
    nonfinite_samples: int = 0

    def as_dict(self) -> dict:
        """The fields as JSON-able values (the mode masses as a list)."""
        out = asdict(self)
        if self.mode_mass is not None:
            out["mode_mass"] = self.mode_mass.tolist()
        return out

    def summary(self) -> str:
        """A few lines for a person: the warnings first."""
        lines = [f"WARNING: {w}" for w in self.warnings]
        lines.append(
            f"flow: ESS {100 * self.ess:.1f} %, log Z-hat {self.log_z:.4f} +- {self.log_z_se:.4f}"
            f" ({self.n} samples)"
        )
        lines.append(
            f"broad ({self.broad}): log Z-hat {self.broad_log_z:.4f} +- {self.broad_log_z_se:.4f},"
            f" ESS {100 * self.broad_ess:.2f} %"
        )
        if self.log_z_error is not None:
            lines.append(
                f"exact: log Z {self.log_normalizer:.4f}, error {self.log_z_error:+.4f},"
                f" reverse KL {self.reverse_kl:.4f}"
            )
        if self.modes_covered is not None:
            lines.append(
                f"modes covered (mass within x2 of weight): {self.modes_covered}"
                f" of {len(self.mode_mass)}"
            )
        if self.finite_fraction is not None:
            lines.append(f"log_prob finite on {100 * self.finite_fraction:.2f} % of the grid")
        return "\n".join(lines)


def _mode_mass(target: Target, x: Tensor, log_w: Tensor) -> tuple[Tensor | None, int | None]:
    """Self-normalized weighted mass per mode, and how many are within ×2 of their weight."""
    if target.modes is None or target.weights is None:
        return None, None
    w = (log_w - log_w.max()).exp()
    mass = torch.bincount(target.assign(x), weights=w, minlength=len(target.modes)) / w.sum()
    weights = target.weights.double()
    covered = int(((mass >= weights / 2) & (mass <= 2 * weights)).sum())
    return mass, covered


def _finite_fraction(flow, target: Target, points: int, dtype: torch.dtype) -> float | None:
    """The share of a ``points × points`` grid over the bounds where ``flow.log_prob`` is finite."""
    if not points or target.dim != 2 or target.bounds is None or not hasattr(flow, "log_prob"):
        return None
    low, high = (b.double() for b in target.bounds)
    axes = [
        torch.linspace(float(lo), float(hi), points, dtype=torch.float64)
        for lo, hi in zip(low, high)
    ]
    lp = _flow_log_prob(flow, torch.cartesian_prod(*axes), dtype)
    return float(torch.isfinite(lp).double().mean())


def diagnose(
    flow_or_sampler,
    target: Target,
    n: int = 100_000,
    *,
    broad: str | None = "auto",
    generator: torch.Generator | None = None,
    tolerance: float = 0.02,
    grid: int = 300,
) -> Diagnosis:
    """Score a sampler of ``target`` by importance sampling, with checks it cannot fool.

    Args:
        flow_or_sampler: Anything with ``sample_and_log_prob(n) -> (x, log q)``
            (a ``NormalizingFlow``); with ``log_prob`` too, its finiteness on a grid is
            checked (2-D) and ``broad="defensive"`` is possible.
        target: The :class:`~flowforge.targets.Target`.
        n: Samples from the flow, and as many from the broad proposal.
        broad: The second proposal: ``"defensive"`` (half the flow, half the uniform on
            the bounds in 2-D or the matched Gaussian otherwise; the default, ``"auto"``,
            when the sampler has ``log_prob``, chosen by ``benchmarks/importance_broad.py``:
            as sensitive to a missing mode as the others, with a third of their error when
            nothing is missing), ``"uniform"``, ``"gaussian"`` or ``"matched"`` (see
            :func:`broad_proposal`; ``"auto"`` without ``log_prob``).
        generator: The broad proposal's random stream (the flow uses torch's global one).
        tolerance: Nats added to the three-standard-error band before a disagreement.
        grid: Points per side of the 2-D grid for the finiteness check.

    Example:
        >>> from flowforge import targets
        >>> moons = targets.get("two-moons")
        >>> keep_right = torch.Generator().manual_seed(0)
        >>> one_moon = targets.TargetSampler(moons, keep=[0], generator=keep_right)
        >>> d = diagnose(one_moon, moons, 20_000, generator=torch.Generator().manual_seed(1))
        >>> d.ess > 0.99, d.disagree, round(d.log_z_error, 2)
        (True, True, -0.69)
    """
    x, log_q, dtype = _draw(flow_or_sampler, n)
    bad = ~(torch.isfinite(log_q) & torch.isfinite(x).all(1))
    x, log_q = x[~bad], log_q[~bad]
    log_w = importance_weights(_target_log_prob(target, x), log_q)
    log_z, se, ess = estimate(log_w)
    if broad in ("auto", None):
        plain = "uniform" if target.dim == 2 and target.bounds is not None else "matched"
        broad = "defensive" if hasattr(flow_or_sampler, "log_prob") else plain
    if broad == "defensive":
        proposal = Defensive(flow_or_sampler, broad_proposal(target, x), dtype)
    else:
        proposal = broad_proposal(target, x, broad)
    xb, log_b = proposal.sample_and_log_prob(n, generator)
    broad_log_z, broad_se, broad_ess = estimate(
        importance_weights(_target_log_prob(target, xb), log_b)
    )
    mass, covered = _mode_mass(target, x, log_w)
    finite = _finite_fraction(flow_or_sampler, target, grid, dtype)
    truth = target.log_normalizer
    d = Diagnosis(
        n=n, ess=ess, log_z=log_z, log_z_se=se, broad=broad, broad_log_z=broad_log_z,
        broad_log_z_se=broad_se, broad_ess=broad_ess, disagree=False, log_normalizer=truth,
        reverse_kl=None if truth is None else truth - float(log_w.mean()),
        log_z_error=None if truth is None else log_z - truth, mode_mass=mass,
        modes_covered=covered, finite_fraction=finite,
        nonfinite_samples=int(bad.sum()),
    )  # fmt: skip
    d.warnings = _warnings(d, tolerance)
    flags = ("the flow's log Z-hat", "the flow's ESS", "modes")
    d.disagree = any(w.startswith(flags) for w in d.warnings)
    return d


def _warnings(d: Diagnosis, tolerance: float) -> list[str]:
    out = []
    band = 3 * math.hypot(d.log_z_se, d.broad_log_z_se) + tolerance
    gap = d.log_z - d.broad_log_z
    if not abs(gap) <= band:
        out.append(
            f"the flow's log Z-hat {d.log_z:.4f} +- {d.log_z_se:.4f} disagrees with the broad "
            f"proposal's {d.broad_log_z:.4f} +- {d.broad_log_z_se:.4f} (gap {gap:+.3f} > "
            f"{band:.3f}): the flow likely misses mass (a mode) or its weights are heavy-tailed"
        )
    if d.ess < LOW_ESS:
        out.append(
            f"the flow's ESS is {100 * d.ess:.2f} % ({d.ess * d.n:.0f} of {d.n} samples): its "
            "log Z-hat and error bar rest on a few weights; train longer or fix the flow"
        )
    if d.modes_covered is not None and d.modes_covered < len(d.mode_mass):
        out.append(
            f"modes: only {d.modes_covered} of {len(d.mode_mass)} receive mass within a factor "
            "of two of their weight"
        )
    if d.broad_ess * d.n < 100:
        out.append(
            f"the broad check is weak: its ESS is {d.broad_ess * d.n:.0f} samples; use a larger n"
        )
    if d.nonfinite_samples:
        out.append(
            f"{d.nonfinite_samples} of the flow's samples or their log q were not finite (left out)"
        )
    if d.finite_fraction is not None and d.finite_fraction < 1:
        out.append(
            f"the flow's log_prob is not finite on {100 * (1 - d.finite_fraction):.2f} % of a grid"
        )
    return out
