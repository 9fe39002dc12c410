"""The attackers' surrogate: training on soft answers, gradients, fidelity curves."""

from __future__ import annotations

import numpy as np

from clonewatch.sim.surrogate import Surrogate, checkpoints


class TestSurrogate:
    """The numpy softmax surrogate."""

    def test_input_gradient_matches_finite_differences(self) -> None:
        """The analytic d p_c / d x equals a central finite difference (hidden layer too)."""
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 4, size=(30, 5))
        p = rng.dirichlet(np.ones(3), size=30)
        for hidden in (0, 6):
            s = Surrogate(np.zeros(5), np.full(5, 4.0), 3, hidden=hidden, seed=1).fit(x, p)
            cls = np.full(30, 2)
            grad = s.input_gradient(x, cls)
            eps = 1e-5
            for j in range(5):
                up, down = x.copy(), x.copy()
                up[:, j] += eps
                down[:, j] -= eps
                numeric = (s.predict_proba(up)[:, 2] - s.predict_proba(down)[:, 2]) / (2 * eps)
                assert np.allclose(grad[:, j], numeric, atol=1e-6)

    def test_learns_a_linear_teacher_from_its_probabilities(self) -> None:
        """Distilling a softmax teacher's answers recovers its decisions."""
        rng = np.random.default_rng(3)
        w = rng.normal(size=(4, 3))
        x = rng.uniform(-1, 1, size=(400, 4))
        logits = x @ w * 3
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        s = Surrogate(np.full(4, -1.0), np.ones(4), 3).fit(x, p)
        test = rng.uniform(-1, 1, size=(500, 4))
        assert np.mean(s.predict(test) == (test @ w).argmax(axis=1)) > 0.95


class TestCheckpoints:
    """Where the fidelity curve is sampled."""

    def test_dense_early_and_ends_at_the_total(self) -> None:
        """Every 10 queries up to 100, then every 25-50 up to 1000, always ending at the total."""
        points = checkpoints(2600)
        assert points[:10] == list(range(10, 101, 10))
        gaps = np.diff([q for q in points if 100 <= q <= 1000])
        assert set(gaps.tolist()) <= {25, 50}
        assert points[-1] == 2600
        assert checkpoints(7) == [7]
