"""Campaigns: a burst of accounts reaching `low` risk on one model, against the model's own rate.

A campaign splits its queries over many accounts so that each stays small. Each account then
builds some evidence, often enough for a `low` or `moderate` alert, rarely for `high`. This
detector pools them. Per model and per leading signal (one attack tool's accounts show the same
profile; the engine keeps one watch for each), it counts the accounts whose risk first reached
`low` in the last ``campaign_window_s`` seconds, within their first ``campaign_max_queries``
queries. It tests that count against the rate at which the model's accounts do so outside
campaigns: a Gamma prior of ``campaign_prior_accounts`` per ``campaign_prior_seconds``, updated
with what the model shows, gives a negative binomial tail. The surprise, minus the log of the
looks taken, goes through the combiner's risk anchors. At `high` or above the accounts of the
window are a campaign. A later account joins it only if the test still holds with it, so a
campaign does not outlive its burst. Bounded: at most ``campaign_max_members`` accounts per
window and per campaign.

>>> w = CampaignWatch("m", first_ts=0.0, config=EngineConfig())
>>> hits = [w.observe(f"acct-{i}", 86_400.0 + 60 * i, n=8, event_id=f"e{i}") for i in range(8)]
>>> [h is not None for h in hits]
[False, False, False, False, False, True, True, True]
>>> hits[5].level, len(hits[5].new_members), hits[6].new_members
('high', 6, ['acct-6'])
>>> w.observe("acct-9", 90_000.0 + 7_200, n=8, event_id="e9") is None  # the campaign ended
True
"""

from __future__ import annotations

import hashlib
import math
from collections import deque

from detectors.combiner import risk_of_surprise
from detectors.config import EngineConfig
from schemas.alert import LEVEL_ORDER, RiskLevel, level_for_score


class Member:
    """An account that reached `moderate`: when, after how many queries, on which event."""

    __slots__ = ("client_id", "event_id", "n", "source_ip", "ts")

    def __init__(self, client_id: str, ts: float, n: int, event_id: str, source_ip: str) -> None:
        self.client_id = client_id
        self.ts = ts
        self.n = n
        self.event_id = event_id
        self.source_ip = source_ip


class CampaignHit:
    """A campaign this observation belongs to, and which accounts to alert on now."""

    __slots__ = ("campaign_id", "level", "members", "new_members", "risk")

    def __init__(
        self,
        campaign_id: str,
        level: RiskLevel,
        risk: float,
        members: list[str],
        new_members: list[str],
    ) -> None:
        self.campaign_id = campaign_id
        self.level = level
        self.risk = risk
        self.members = members
        self.new_members = new_members


def burst_surprise(k: int, alpha: float, beta: float, window: float) -> float:
    """-log P(X >= k) for X negative binomial: a Poisson count over ``window`` seconds whose
    rate has a Gamma(alpha, beta) posterior.

    >>> round(burst_surprise(1, 1.0, 86_400.0, 3_600.0), 3)  # 1 - 24/25
    3.219
    >>> burst_surprise(0, 1.0, 1.0, 1.0)
    0.0
    """
    if k <= 0:
        return 0.0
    p = beta / (beta + window)  # NB(alpha, p): P(X = j) = C(j+alpha-1, j) p^alpha (1-p)^j
    log_p, log_q = math.log(p), math.log1p(-p)
    # Upper tail summed from k on, in log space, until the terms stop counting.
    log_terms = []
    j = k
    while True:
        term = (
            math.lgamma(j + alpha) - math.lgamma(alpha) - math.lgamma(j + 1)
            + alpha * log_p + j * log_q
        )  # fmt: skip
        log_terms.append(term)
        if (j > k + 10 and term < log_terms[0] - 40.0) or j > k + 100_000:
            break
        j += 1
    top = max(log_terms)
    tail = top + math.log(sum(math.exp(t - top) for t in log_terms))
    return max(0.0, -tail)


class CampaignWatch:
    """One model's accounts reaching `low` (with one leading signal), tested for bursts."""

    def __init__(
        self, model_id: str, first_ts: float, config: EngineConfig, profile: str = ""
    ) -> None:
        self.model_id = model_id
        self.profile = profile  # the signal leading the accounts this watch counts
        self.first_ts = first_ts
        self.window = config.campaign_window_s
        self.prior_accounts = config.campaign_prior_accounts
        self.prior_seconds = config.campaign_prior_seconds
        self.max_members = config.campaign_max_members
        self.recent: deque[Member] = deque()
        self.outside = 0  # accounts that left the window without a campaign
        self.looks = 0
        self.campaign_id: str | None = None
        self.members: list[str] = []
        self.last_ts = -math.inf

    def observe(
        self, client_id: str, ts: float, n: int, event_id: str, source_ip: str = ""
    ) -> CampaignHit | None:
        """An account's risk first reached the campaign level: the campaign it completes, if any.

        The burst test must hold at this observation, to start a campaign and to add to one;
        the accounts of the window not yet named are named now.
        """
        self._expire(ts)
        if self.member(client_id) is not None:
            return None  # counted once per window
        if len(self.recent) >= self.max_members:
            self.recent.popleft()
        self.recent.append(Member(client_id, ts, n, event_id, source_ip))
        self.looks += 1
        alpha = self.prior_accounts + self.outside
        beta = self.prior_seconds + max(0.0, ts - self.first_ts - self.window)
        surprise = burst_surprise(len(self.recent), alpha, beta, self.window)
        surprise -= math.log(self.looks)
        risk = risk_of_surprise(surprise)
        level = level_for_score(risk)
        if LEVEL_ORDER[level] < LEVEL_ORDER["high"]:
            return None
        self.last_ts = max(self.last_ts, ts)
        if self.campaign_id is None:
            first = self.recent[0]
            key = f"campaign|{self.model_id}|{self.profile}|{first.client_id}|{first.event_id}"
            self.campaign_id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
            self.members = []
        named = set(self.members)
        room = self.max_members - len(self.members)
        new = [m.client_id for m in self.recent if m.client_id not in named][: max(room, 0)]
        if not new:
            return None
        self.members.extend(new)
        return CampaignHit(self.campaign_id, level, risk, list(self.members), new)

    def member(self, client_id: str) -> Member | None:
        """The account's entry in the current window, if it has one."""
        for m in self.recent:
            if m.client_id == client_id:
                return m
        return None

    def _expire(self, ts: float) -> None:
        """Drop accounts older than the window; end a campaign quiet for a window."""
        while self.recent and self.recent[0].ts < ts - self.window:
            gone = self.recent.popleft()
            if gone.client_id not in self.members:
                self.outside += 1
        if self.campaign_id is not None and ts - self.last_ts > self.window:
            self.campaign_id = None
            self.members = []
