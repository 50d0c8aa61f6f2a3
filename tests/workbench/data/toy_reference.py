"""The toy sets as the FFJORD and neural-spline-flow papers' code draws them, re-expressed
in numpy as independent references (the other way round from flowforge's shapes: fixed
splits, evenly spaced angles, scikit-learn's own generators where the papers used them).

Each function returns ``(n, 2)`` float64 points in original units.
"""

from __future__ import annotations

import numpy as np


def eight_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    d = 1 / np.sqrt(2)
    centres = 4 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (d, d), (d, -d), (-d, d), (-d, -d)])
    points = 0.5 * rng.standard_normal((n, 2)) + centres[rng.integers(0, 8, n)]
    return points / 1.414


def checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = 4 * rng.random(n) - 2
    x2 = rng.random(n) - 2 * rng.integers(0, 2, n) + np.floor(x1) % 2
    return 2 * np.stack([x1, x2], 1)


def circles(n: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.datasets import make_circles

    return 3 * make_circles(n, factor=0.5, noise=0.08, random_state=int(rng.integers(2**31)))[0]


def rings(n: int, rng: np.random.Generator) -> np.ndarray:
    sizes = [n // 4] * 3 + [n - 3 * (n // 4)]
    parts = []
    for radius, size in zip((1.0, 0.75, 0.5, 0.25), sizes):
        angle = np.linspace(0, 2 * np.pi, size, endpoint=False)
        parts.append(radius * np.stack([np.cos(angle), np.sin(angle)], 1))
    return 3 * np.concatenate(parts) + rng.normal(scale=0.08, size=(n, 2))


def pinwheel(n: int, rng: np.random.Generator) -> np.ndarray:
    arms, per_arm = 5, n // 5
    features = rng.standard_normal((arms * per_arm, 2)) * np.array([0.3, 0.1])
    features[:, 0] += 1
    labels = np.repeat(np.arange(arms), per_arm)
    angles = 2 * np.pi * labels / arms + 0.25 * np.exp(features[:, 0])
    c, s = np.cos(angles), np.sin(angles)
    rotations = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], 1)  # (n, 2, 2) rows
    return 2 * np.einsum("ti,tij->tj", features, rotations)


def two_spirals(n: int, rng: np.random.Generator) -> np.ndarray:
    half = n // 2
    t = np.sqrt(rng.random((half, 1))) * 540 * (2 * np.pi) / 360
    dx = -np.cos(t) * t + rng.random((half, 1)) * 0.5
    dy = np.sin(t) * t + rng.random((half, 1)) * 0.5
    x = np.vstack([np.hstack([dx, dy]), np.hstack([-dx, -dy])]) / 3
    return x + 0.1 * rng.standard_normal(x.shape)


def swiss_roll(n: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.datasets import make_swiss_roll

    raw = make_swiss_roll(n, noise=1.0, random_state=int(rng.integers(2**31)))[0]
    return raw[:, [0, 2]] / 5


REFERENCES = {
    "eight_gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "circles": circles,
    "pinwheel": pinwheel,
    "two_spirals": two_spirals,
    "rings": rings,
    "swiss_roll": swiss_roll,
}
