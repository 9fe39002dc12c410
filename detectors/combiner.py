"""Turns signal evidence into one calibrated 0-100 risk with each signal's share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import pairwise

from detectors.config import EngineConfig

# Risk anchors: combined surprise in nats (after the look penalty) -> risk points.
ANCHORS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (5.0, 20.0),
    (10.0, 40.0),
    (16.0, 70.0),
    (25.0, 90.0),
)


def gamma_tail_surprise(total: float, k: int) -> float:
    """``-log P(G >= total)`` for G ~ Gamma(k, 1): Fisher's combination of k surprises.

    Each signal's surprise is about Exp(1) for a benign client, so their sum is
    Gamma(k, 1) and its tail probability is a calibrated joint p-value.

    >>> round(gamma_tail_surprise(1.0, 1), 3), round(gamma_tail_surprise(20.0, 3), 2)
    (1.0, 14.6)
    """
    if total <= 0.0 or k <= 0:
        return 0.0
    term, acc = 1.0, 1.0
    for j in range(1, k):
        term *= total / j
        acc += term
    surprise = total - math.log(acc)
    return surprise if surprise > 0.0 else 0.0  # max(0.0, surprise)


# The segments between successive anchors: (x0, y0, x1, y1, y1 - y0, x1 - x0).
_SEGMENTS = tuple((x0, y0, x1, y1, y1 - y0, x1 - x0) for (x0, y0), (x1, y1) in pairwise(ANCHORS))


def risk_of_surprise(c: float) -> float:
    """Map combined surprise (nats) to a 0-100 risk along the band anchors.

    >>> [round(risk_of_surprise(c)) for c in (0, 5, 10, 16, 25, 60)]
    [0, 20, 40, 70, 90, 100]
    """
    if c <= 0.0:
        return 0.0
    for x0, y0, x1, _, dy, dx in _SEGMENTS:
        if c <= x1:
            return y0 + dy * (c - x0) / dx
    x_last, y_last = ANCHORS[-1]
    return y_last + (100.0 - y_last) * (1.0 - math.exp(-(c - x_last) / 10.0))


class RiskCombiner:
    """Fisher-style combination of per-signal surprises into a risk score.

    Each signal reports evidence in nats that behaves like Exp(1) on benign
    clients (per-event signals through Page's CUSUM scaled by its tail rate,
    client-level tests as ``-log p``). Their sum is tested against Gamma(k, 1),
    then ``log(n)`` is subtracted for the n looks taken at the client so far,
    and the result is mapped onto Elastic's risk bands. Each signal is capped
    so that one signal alone tops out at "high": "critical" needs agreement.

    >>> c = RiskCombiner(EngineConfig())
    >>> round(c.risk({"novelty": 0.5, "steps": 0.0, "volume": 1.0}, n=500)[0])
    0
    >>> c.risk({"novelty": 500.0, "steps": 0.0, "low_margin": 0.0}, n=50)[0] < 90
    True
    >>> c.risk({"novelty": 500.0, "steps": 500.0, "low_margin": 0.0}, n=50)[0] > 90
    True
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def risk(self, evidence: Mapping[str, float], n: int) -> tuple[float, dict[str, float]]:
        """The risk (0-100) and each signal's share of it in risk points."""
        cfg = self.config
        cap_volume, cap_signal = cfg.cap_volume, cfg.cap_signal
        capped: dict[str, float] = {}
        total = 0.0
        for k, raw in evidence.items():  # each surprise after its cap, summed in order
            cap = cap_volume if k == "volume" else cap_signal
            if k == "tail_count":  # a count of many suspicious queries: worth more alone
                cap = cfg.cap_count
            v = capped[k] = cap if cap < raw else raw  # min(raw, cap), as a comparison
            total += v
        combined = gamma_tail_surprise(total, len(capped)) - math.log(n if n > 1 else 1)
        risk = risk_of_surprise(combined)
        if total > 0:
            shares = {k: risk * v / total for k, v in capped.items()}
        else:
            shares = dict.fromkeys(capped, 0.0)
        return risk, shares
