"""What an attacker trains on the answers it got, and how close it comes to the victim.

:class:`Surrogate` is a small softmax network (linear, or one tanh hidden layer)
trained with L-BFGS on the probability vectors the API returned (knowledge
distillation), written with numpy so its input gradient is available to JbDA.
Fidelity is the share of held-out inputs on which surrogate and victim agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def _softmax(z: Floats) -> Floats:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: Floats = e / e.sum(axis=1, keepdims=True)
    return out


class Surrogate:
    """A softmax classifier over inputs scaled to the known feature box.

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    >>> p = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    >>> s = Surrogate(np.zeros(2), np.ones(2), 2, seed=0).fit(x, p)
    >>> s.predict(x).tolist()
    [0, 1, 0, 1]
    """

    def __init__(
        self,
        lo: Floats,
        hi: Floats,
        n_classes: int,
        *,
        hidden: int = 0,
        l2: float = 1e-5,
        seed: int = 0,
    ) -> None:
        self.lo = np.asarray(lo, dtype=np.float64)
        span = np.asarray(hi, dtype=np.float64) - self.lo
        self.span = np.where(span > 0, span, 1.0)
        self.n_classes = n_classes
        self.hidden = hidden
        self.l2 = l2
        d = len(self.lo)
        rng = np.random.default_rng(seed)
        if hidden:
            w1 = rng.normal(scale=1.0 / np.sqrt(d), size=(d, hidden))
            w2 = rng.normal(scale=1.0 / np.sqrt(hidden), size=(hidden, n_classes))
            self.theta = np.concatenate(
                [w1.ravel(), np.zeros(hidden), w2.ravel(), np.zeros(n_classes)]
            )
        else:
            self.theta = np.zeros(d * n_classes + n_classes)
        self.fitted = False

    def _unpack(self, theta: Floats) -> tuple[Floats, ...]:
        d, h, k = len(self.lo), self.hidden, self.n_classes
        if not h:
            return theta[: d * k].reshape(d, k), theta[d * k :]
        i = 0
        w1 = theta[i : i + d * h].reshape(d, h)
        i += d * h
        b1 = theta[i : i + h]
        i += h
        w2 = theta[i : i + h * k].reshape(h, k)
        i += h * k
        return w1, b1, w2, theta[i:]

    def _z(self, x: Floats) -> Floats:
        out: Floats = (np.asarray(x, dtype=np.float64) - self.lo) / self.span
        return out

    def _loss(self, theta: Floats, z: Floats, p: Floats) -> tuple[float, Floats]:
        n = len(z)
        if not self.hidden:
            w, b = self._unpack(theta)
            s = _softmax(z @ w + b)
            g = (s - p) / n
            loss = -float(np.sum(p * np.log(s + 1e-12))) / n + 0.5 * self.l2 * float(np.sum(w * w))
            grad = np.concatenate([(z.T @ g + self.l2 * w).ravel(), g.sum(axis=0)])
            return loss, grad
        w1, b1, w2, b2 = self._unpack(theta)
        hid = np.tanh(z @ w1 + b1)
        s = _softmax(hid @ w2 + b2)
        g = (s - p) / n
        da = (g @ w2.T) * (1.0 - hid * hid)
        reg = float(np.sum(w1 * w1) + np.sum(w2 * w2))
        loss = -float(np.sum(p * np.log(s + 1e-12))) / n + 0.5 * self.l2 * reg
        grad = np.concatenate(
            [
                (z.T @ da + self.l2 * w1).ravel(),
                da.sum(axis=0),
                (hid.T @ g + self.l2 * w2).ravel(),
                g.sum(axis=0),
            ]
        )
        return loss, grad

    def fit(self, x: Floats, p: Floats, *, max_iter: int = 200) -> Surrogate:
        """Fit (warm-started from the current weights) to inputs and answered probabilities."""
        z = self._z(x)
        res = minimize(
            self._loss,
            self.theta,
            args=(z, np.asarray(p, dtype=np.float64)),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter},
        )
        self.theta = np.asarray(res.x, dtype=np.float64)
        self.fitted = True
        return self

    def predict_proba(self, x: Floats) -> Floats:
        """Class probabilities."""
        z = self._z(x)
        if not self.hidden:
            w, b = self._unpack(self.theta)
            return _softmax(z @ w + b)
        w1, b1, w2, b2 = self._unpack(self.theta)
        return _softmax(np.tanh(z @ w1 + b1) @ w2 + b2)

    def predict(self, x: Floats) -> Ints:
        """Predicted labels."""
        return np.asarray(self.predict_proba(x).argmax(axis=1), dtype=np.int64)

    def input_gradient(self, x: Floats, classes: Ints) -> Floats:
        """d p_c / d x for each row's class ``c`` (the Jacobian row JbDA follows)."""
        z = self._z(x)
        rows = np.arange(len(z))
        if not self.hidden:
            w, b = self._unpack(self.theta)
            s = _softmax(z @ w + b)
            dlog = -s * s[rows, classes][:, None]
            dlog[rows, classes] += s[rows, classes]
            dz = dlog @ w.T
        else:
            w1, b1, w2, b2 = self._unpack(self.theta)
            hid = np.tanh(z @ w1 + b1)
            s = _softmax(hid @ w2 + b2)
            dlog = -s * s[rows, classes][:, None]
            dlog[rows, classes] += s[rows, classes]
            dz = ((dlog @ w2.T) * (1.0 - hid * hid)) @ w1.T
        out: Floats = dz / self.span
        return out


def checkpoints(total: int) -> list[int]:
    """Query counts at which the fidelity curve is sampled: dense early, coarser later.

    >>> checkpoints(130)
    [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 125, 130]
    """
    points = list(range(10, 101, 10)) + list(range(125, 301, 25)) + list(range(350, 1001, 50))
    points += list(range(1250, 5001, 250)) + list(range(5500, 100_001, 500))
    out = [q for q in points if q < total]
    out.append(total)
    return out


def fidelity(predict: Callable[[Floats], Ints], x_held: Floats, y_victim: Ints) -> float:
    """Share of held-out inputs on which the surrogate agrees with the victim's label."""
    return float(np.mean(predict(x_held) == y_victim))


def surrogate_curve(
    make: Callable[[], Surrogate],
    x: Floats,
    p: Floats,
    x_held: Floats,
    y_victim: Ints,
    points: Sequence[int] | None = None,
    *,
    max_iter: int = 150,
) -> list[list[float]]:
    """Fidelity of a surrogate retrained on each prefix of the answers (warm-started)."""
    model = make()
    curve: list[list[float]] = []
    for q in points or checkpoints(len(x)):
        model.fit(x[:q], p[:q], max_iter=max_iter)
        curve.append([q, round(fidelity(model.predict, x_held, y_victim), 4)])
    return curve
