"""Attack variants the engine was not tuned on are caught, and benign clients left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from clonewatch.evaluate import EvaluationReport, evaluate
from clonewatch.sim import attacks, simulate
from clonewatch.sim.simulate import AttackPlan
from streams.replay import replay_path

VARIANTS = (
    AttackPlan(
        "jbda-shuffled", "jbda", "digits-mlp",
        lambda v, r: attacks.jbda(v, r, seed_size=10, rounds=7, shuffle=True), pace=1.5,
    ),
    AttackPlan(
        "jbda-50-seeds", "jbda", "digits-mlp",
        lambda v, r: attacks.jbda(v, r, seed_size=50, rounds=5, step=0.05), pace=1.5,
    ),
    AttackPlan(
        "jbda-150-seeds", "jbda", "digits-mlp",
        lambda v, r: attacks.jbda(v, r, seed_size=150, rounds=4), pace=1.5,
    ),
    AttackPlan(
        "t-rnd", "jbda", "digits-mlp",
        lambda v, r: attacks.jbda(v, r, seed_size=10, rounds=7, random_sign=True), pace=2.0,
    ),
    AttackPlan(
        "t-rnd-slow", "slow", "digits-mlp",
        lambda v, r: attacks.jbda(v, r, seed_size=10, rounds=7, random_sign=True), pace=60.0,
    ),
    AttackPlan(
        "knockoff-slow", "slow", "digits-mlp",
        lambda v, r: attacks.knockoff(v, r, 1200), pace=60.0,
    ),
    AttackPlan(
        "random-logreg", "uniform-random", "digits-logreg",
        lambda v, r: attacks.uniform_random(v, r, 1500), pace=1.0,
    ),
)  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> EvaluationReport:
    """The seed-7 benign day with the variants as its attackers, replayed and evaluated."""
    out = tmp_path_factory.mktemp("variants")
    log, truth = out / "q.jsonl.gz", out / "truth.json"
    simulate(log, truth, seed=7, scale=1.0, plans=VARIANTS)
    return evaluate(Path(log), Path(truth), replay_path(log).alerts)


@pytest.mark.slow
def test_every_variant_is_caught(report: EvaluationReport) -> None:
    """JbDA shuffled, from 50 and 150 seeds, with random signs, slow; slow Knockoff; random
    on logreg."""
    missed = [a.name for a in report.clonewatch.attackers if not a.caught]
    assert not missed


@pytest.mark.slow
def test_benign_clients_are_left_alone(report: EvaluationReport) -> None:
    """At most 1 % of benign clients flagged, and no heavy or batch client."""
    cw = report.clonewatch
    assert cw.benign_flagged_share <= 0.01 and cw.heavy_batch_flagged == 0
