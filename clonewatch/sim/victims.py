"""Victim models: real scikit-learn classifiers trained on datasets shipped with scikit-learn.

Half of each dataset (stratified, chosen by the seed) trains the victim; the other
half is the natural pool benign traffic draws from and the held-out set on which
an attacker's surrogate is compared with the victim (fidelity).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from clonewatch.sim.common import INPUT_DECIMALS, rng_for

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
VictimKind = Literal["image", "tabular", "linear"]

MODEL_IDS: tuple[str, ...] = ("digits-mlp", "cancer-gbt", "digits-logreg")


@dataclass
class Victim:
    """A served model with its data: ``query`` answers a batch as the API would."""

    model_id: str
    kind: VictimKind
    estimator: Any
    x_train: Floats
    y_train: Ints
    x_pool: Floats
    y_pool: Ints
    integer_inputs: bool
    lo: Floats = field(init=False)
    hi: Floats = field(init=False)
    std: Floats = field(init=False)
    n_classes: int = field(init=False)
    pool_labels: Ints = field(init=False)
    queries_answered: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        both = np.vstack([self.x_train, self.x_pool])
        self.lo = both.min(axis=0)
        self.hi = both.max(axis=0)
        self.std = both.std(axis=0)
        self.n_classes = int(max(self.y_train.max(), self.y_pool.max()) + 1)
        # The victim's own answers on the held-out pool: what fidelity is measured against.
        self.pool_labels = self.predict(self.x_pool)

    @property
    def n_features(self) -> int:
        """Input dimension."""
        return int(self.x_train.shape[1])

    def canonical(self, x: Floats) -> Floats:
        """An input as it travels on the wire (rounded to the logged precision)."""
        out = np.asarray(
            np.round(np.asarray(x, dtype=np.float64), INPUT_DECIMALS), dtype=np.float64
        )
        return out

    def predict_proba(self, x: Floats) -> Floats:
        """Class probabilities for a batch of inputs."""
        return np.asarray(self.estimator.predict_proba(x), dtype=np.float64)

    def predict(self, x: Floats) -> Ints:
        """Predicted labels for a batch of inputs."""
        return np.asarray(self.predict_proba(x).argmax(axis=1), dtype=np.int64)

    def query(self, x: Floats) -> tuple[Floats, Floats]:
        """Answer a batch as the API does: the canonical inputs and their probabilities."""
        xc = self.canonical(np.atleast_2d(x))
        self.queries_answered += len(xc)
        return xc, self.predict_proba(xc)

    def describe(self) -> dict[str, Any]:
        """The truth entry of this model."""
        return {"kind": self.kind, "n_features": self.n_features, "n_classes": self.n_classes}


def _split(x: Floats, y: Ints, seed: int, name: str) -> tuple[Floats, Floats, Ints, Ints]:
    state = int(rng_for(seed, "split", name).integers(2**31 - 1))
    parts = train_test_split(x, y, test_size=0.5, random_state=state, stratify=y)
    return (
        np.asarray(parts[0], dtype=np.float64),
        np.asarray(parts[1], dtype=np.float64),
        np.asarray(parts[2], dtype=np.int64),
        np.asarray(parts[3], dtype=np.int64),
    )


def _state(seed: int, name: str) -> int:
    return int(rng_for(seed, "model", name).integers(2**31 - 1))


def _scale16(x: Floats) -> Floats:
    return x / 16.0


def build_victims(seed: int = 7) -> dict[str, Victim]:
    """Train the three victims deterministically for ``seed``."""
    digits = load_digits()
    xd = np.asarray(digits.data, dtype=np.float64)
    yd = np.asarray(digits.target, dtype=np.int64)
    cancer = load_breast_cancer()
    xc = np.asarray(cancer.data, dtype=np.float64)
    yc = np.asarray(cancer.target, dtype=np.int64)

    victims: dict[str, Victim] = {}

    xtr, xpo, ytr, ypo = _split(xd, yd, seed, "digits-mlp")
    mlp = make_pipeline(
        FunctionTransformer(_scale16),
        MLPClassifier(
            hidden_layer_sizes=(64,), alpha=1e-3, max_iter=400, random_state=_state(seed, "mlp")
        ),
    )
    with warnings.catch_warnings():
        # A fixed epoch budget is part of the victim's definition; lbfgs/adam may stop early.
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(xtr, ytr)
    victims["digits-mlp"] = Victim("digits-mlp", "image", mlp, xtr, ytr, xpo, ypo, True)

    xtr, xpo, ytr, ypo = _split(xc, yc, seed, "cancer-gbt")
    gbt = GradientBoostingClassifier(
        n_estimators=100, max_depth=3, random_state=_state(seed, "gbt")
    )
    gbt.fit(xtr, ytr)
    victims["cancer-gbt"] = Victim("cancer-gbt", "tabular", gbt, xtr, ytr, xpo, ypo, False)

    xtr, xpo, ytr, ypo = _split(xd, yd, seed, "digits-logreg")
    logreg = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    logreg.fit(xtr, ytr)
    victims["digits-logreg"] = Victim("digits-logreg", "linear", logreg, xtr, ytr, xpo, ypo, True)
    return victims


def natural_inputs(
    victim: Victim,
    rng: np.random.Generator,
    n: int,
    *,
    jitter: float = 0.07,
    indices: Ints | None = None,
) -> Floats:
    """``n`` natural inputs: pool samples plus Gaussian jitter of ``jitter`` x each feature's std.

    Values are clipped to the feature's observed range; digit pixels are rounded to 0..16.
    """
    idx = rng.integers(len(victim.x_pool), size=n) if indices is None else indices
    base = victim.x_pool[idx]
    noisy = base + rng.normal(size=base.shape) * (jitter * victim.std)
    noisy = np.clip(noisy, victim.lo, victim.hi)
    if victim.integer_inputs:
        noisy = np.round(noisy)
    return victim.canonical(noisy)
