"""Extraction attacks that really steal: each one queries the victim, keeps exactly the
answers it got, and trains a surrogate on them (see :mod:`clonewatch.sim.surrogate`).

Every attack returns an :class:`AttackRun`: its queries in the order sent, the
probabilities the API answered, and the fidelity curve of the surrogate trained on
each prefix of those answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_sample_images

from clonewatch.sim.surrogate import Surrogate, checkpoints, surrogate_curve
from clonewatch.sim.victims import Victim, natural_inputs

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass
class AttackRun:
    """The queries an attacker sent, the answers it got and how well it stole."""

    method: str
    x: Floats
    p: Floats
    curve: list[list[float]]

    @property
    def queries(self) -> int:
        """Number of queries sent."""
        return len(self.x)

    @property
    def final_fidelity(self) -> float:
        """Fidelity of the surrogate trained on every answer."""
        return float(self.curve[-1][1]) if self.curve else 0.0


def _new_surrogate(victim: Victim, hidden: int = 0, seed: int = 0) -> Surrogate:
    return Surrogate(victim.lo, victim.hi, victim.n_classes, hidden=hidden, seed=seed)


def _finish(method: str, victim: Victim, x: Floats, p: Floats, hidden: int = 0) -> AttackRun:
    curve = surrogate_curve(
        lambda: _new_surrogate(victim, hidden), x, p, victim.x_pool, victim.pool_labels
    )
    return AttackRun(method, x, p, curve)


def uniform_random(victim: Victim, rng: np.random.Generator, budget: int) -> AttackRun:
    """Tramèr et al.'s retraining attack: i.i.d. uniform inputs over the feature box."""
    x, p = victim.query(rng.uniform(victim.lo, victim.hi, size=(budget, victim.n_features)))
    return _finish("uniform-random", victim, x, p)


def jbda(
    victim: Victim,
    rng: np.random.Generator,
    *,
    seed_size: int = 100,
    rounds: int = 4,
    step: float = 0.1,
    shuffle: bool = False,
    random_sign: bool = False,
) -> AttackRun:
    """Papernot et al.'s Jacobian-based dataset augmentation.

    A small natural seed; each round trains the surrogate on all answers so far and
    queries ``x + step * range * sign(d p_y / d x)`` for every known ``x`` (``y`` the
    victim's label), doubling the set. The step changes sign every other round.
    Variants: ``shuffle`` sends each round's queries in random order (not parent
    order); ``random_sign`` perturbs along random signs instead of the gradient's
    (T-RND-like, no surrogate needed).
    """
    xs, ps = victim.query(natural_inputs(victim, rng, seed_size, jitter=0.05))
    model = _new_surrogate(victim)
    span = victim.hi - victim.lo
    for r in range(rounds):
        if random_sign:
            direction = rng.choice([-1.0, 1.0], size=xs.shape)
        else:
            model.fit(xs, ps, max_iter=150)
            direction = np.sign(model.input_gradient(xs, ps.argmax(axis=1)))
        sign = 1.0 if r % 2 == 0 else -1.0
        new = np.clip(xs + sign * step * span * direction, victim.lo, victim.hi)
        if shuffle:
            new = new[rng.permutation(len(new))]
        xn, pn = victim.query(new)
        xs, ps = np.vstack([xs, xn]), np.vstack([ps, pn])
    return _finish("jbda", victim, xs, ps)


@cache
def _sample_images_grey() -> tuple[Floats, ...]:
    images = load_sample_images().images
    return tuple(np.asarray(img, dtype=np.float64).mean(axis=2) for img in images)


def image_patches(rng: np.random.Generator, n: int) -> Floats:
    """``n`` natural out-of-domain inputs for the digit models, from scikit-learn's photos.

    A square patch of a sample photo goes through the digits' own preprocessing (as
    the serving tier of an 8x8 digit API would apply it to any uploaded picture):
    scaled to 32x32, its strokes (the strongest 30 % of edges) drawn as a binary
    bitmap, and on-pixels counted per 4x4 block, giving 64 values in 0..16.
    """
    images = _sample_images_grey()
    out = np.empty((n, 64))
    for i in range(n):
        img = images[int(rng.integers(len(images)))]
        f = int(rng.integers(1, 5))
        size = 32 * f
        r0 = int(rng.integers(img.shape[0] - size))
        c0 = int(rng.integers(img.shape[1] - size))
        patch = img[r0 : r0 + size, c0 : c0 + size].reshape(32, f, 32, f).mean(axis=(1, 3))
        gy, gx = np.gradient(patch)
        edges = np.hypot(gx, gy)
        strokes = edges > np.quantile(edges, 0.7)
        out[i] = strokes.reshape(8, 4, 8, 4).sum(axis=(1, 3)).ravel()
    return out


def knockoff(victim: Victim, rng: np.random.Generator, budget: int) -> AttackRun:
    """Knockoff Nets (random strategy) with natural out-of-domain images (digit models)."""
    x, p = victim.query(image_patches(rng, budget))
    return _finish("knockoff", victim, x, p)


def activethief(
    victim: Victim,
    rng: np.random.Generator,
    budget: int,
    *,
    seed_size: int = 100,
    batch: int = 100,
    pool_size: int = 4000,
    out_of_domain: bool = False,
) -> AttackRun:
    """ActiveThief with uncertainty sampling over a natural pool the attacker holds.

    A random seed, then rounds querying the pool points where the current
    surrogate's top-two margin is smallest. As in the paper, the pool can be
    public data from another domain (``out_of_domain``: photo patches for the
    digit models) rather than the victim's own distribution.
    """
    if out_of_domain:
        pool = victim.canonical(image_patches(rng, pool_size))
    else:
        pool = natural_inputs(victim, rng, pool_size, jitter=0.1)
    used = np.zeros(len(pool), dtype=bool)
    first = rng.choice(len(pool), size=seed_size, replace=False)
    used[first] = True
    xs, ps = victim.query(pool[first])
    model = _new_surrogate(victim)
    while len(xs) < budget:
        model.fit(xs, ps, max_iter=150)
        probs = np.sort(model.predict_proba(pool), axis=1)
        margin = probs[:, -1] - probs[:, -2]
        margin[used] = np.inf
        pick = np.argsort(margin, kind="stable")[: min(batch, budget - len(xs))]
        used[pick] = True
        xn, pn = victim.query(pool[pick])
        xs, ps = np.vstack([xs, xn]), np.vstack([ps, pn])
    return _finish("activethief", victim, xs, ps)


def _solve_linear(x: Floats, p: Floats) -> Floats | None:
    ok = np.all(p > 0, axis=1)
    if not ok.any():
        return None
    a = np.hstack([x[ok], np.ones((int(ok.sum()), 1))])
    logp = np.log(p[ok])
    ratios = logp[:, 1:] - logp[:, :1]
    theta, *_ = np.linalg.lstsq(a, ratios, rcond=None)
    out: Floats = theta
    return out


def _linear_predict(theta: Floats | None, x: Floats) -> Ints:
    if theta is None:
        return np.zeros(len(x), dtype=np.int64)
    scores = np.hstack([np.zeros((len(x), 1)), np.hstack([x, np.ones((len(x), 1))]) @ theta])
    return np.asarray(scores.argmax(axis=1), dtype=np.int64)


def equation_solving(victim: Victim, rng: np.random.Generator, budget: int) -> AttackRun:
    """Tramèr et al.'s equation solving on a linear softmax model.

    Random inputs; each answer gives ``log(p_c / p_0) = (w_c - w_0) . x + (b_c - b_0)``
    for every class ``c``; least squares over the answers recovers the model once
    there are about ``d + 1`` of them.
    """
    center = (victim.lo + victim.hi) / 2.0
    half = (victim.hi - victim.lo) / 2.0
    x, p = victim.query(center + half * rng.uniform(-0.25, 0.25, size=(budget, victim.n_features)))
    curve: list[list[float]] = []
    for q in checkpoints(budget):
        theta = _solve_linear(x[:q], p[:q])
        agree = np.mean(_linear_predict(theta, victim.x_pool) == victim.pool_labels)
        curve.append([q, round(float(agree), 4)])
    return AttackRun("equation-solving", x, p, curve)


def line_search(
    victim: Victim,
    rng: np.random.Generator,
    budget: int,
    *,
    grid: int = 8,
    bisections: int = 3,
) -> AttackRun:
    """Path-finding style probing: from natural base points, vary one feature at a time.

    For every feature, a sweep of ``grid`` values across its range, then
    ``bisections`` halvings of every interval where the label flips, to locate the
    decision boundaries. The surrogate is trained on all probes.
    """
    rows: list[Floats] = []
    answers: list[Floats] = []
    while sum(len(r) for r in rows) < budget:
        base = natural_inputs(victim, rng, 1, jitter=0.05)[0]
        for j in rng.permutation(victim.n_features):
            values = np.linspace(victim.lo[j], victim.hi[j], grid)
            probes = np.repeat(base[None, :], grid, axis=0)
            probes[:, j] = values
            xq, pq = victim.query(probes)
            rows.append(xq)
            answers.append(pq)
            labels = pq.argmax(axis=1)
            for k in np.flatnonzero(labels[1:] != labels[:-1]):
                lo_v, hi_v, lo_lab = values[k], values[k + 1], labels[k]
                for _ in range(bisections):
                    mid = (lo_v + hi_v) / 2.0
                    probe = base.copy()
                    probe[j] = mid
                    xb, pb = victim.query(probe)
                    rows.append(xb)
                    answers.append(pb)
                    if pb[0].argmax() == lo_lab:
                        lo_v = mid
                    else:
                        hi_v = mid
    x = np.vstack(rows)[:budget]
    p = np.vstack(answers)[:budget]
    return _finish("line-search", victim, x, p)
