"""Campaigns: accounts reaching `low` in a burst are pooled, against the model's own rate."""

from __future__ import annotations

import math

from detectors.campaign import CampaignWatch, burst_surprise
from detectors.config import EngineConfig
from detectors.engine import Engine
from schemas import CAMPAIGN_RULE_ID, RULE_ID, Alert
from tests.detectors.campaign_support import ACCOUNTS, campaign_stream

DAY = 86_400.0


def _watch(**overrides: float) -> CampaignWatch:
    return CampaignWatch("m", 0.0, EngineConfig(**overrides))  # type: ignore[arg-type]


def _burst(w: CampaignWatch, start: float, k: int, gap: float = 60.0, tag: str = "a") -> list[bool]:
    return [w.observe(f"{tag}{i}", start + gap * i, 8, f"{tag}e{i}") is not None for i in range(k)]


class TestBurstSurprise:
    """The negative binomial tail."""

    def test_geometric_case_matches_its_closed_form(self) -> None:
        """With alpha 1 the count is geometric: P(X >= k) = (W / (beta + W)) ** k."""
        for k in (1, 3, 7):
            want = -k * math.log(3600.0 / (DAY + 3600.0))
            assert math.isclose(burst_surprise(k, 1.0, DAY, 3600.0), want, rel_tol=1e-9)

    def test_a_higher_rate_makes_the_same_count_less_surprising(self) -> None:
        """Ten accounts a day seen before: seven in an hour is far less surprising than with one."""
        assert burst_surprise(7, 11.0, 2 * DAY, 3600.0) < burst_surprise(7, 1.0, 2 * DAY, 3600.0)


class TestCampaignWatch:
    """One model's watch."""

    def test_a_burst_after_a_quiet_day_is_a_campaign(self) -> None:
        """Six accounts in six minutes after a day without any: the sixth completes it."""
        w = _watch()
        assert _burst(w, DAY, 8) == [False] * 5 + [True] * 3

    def test_the_same_burst_at_the_start_needs_more_accounts(self) -> None:
        """In the first hour the rate is only the prior's: it takes more accounts."""
        hits = _burst(_watch(), 600.0, 12)
        assert hits.index(True) > 5

    def test_a_model_whose_accounts_often_reach_low_needs_more(self) -> None:
        """A rate of one account an hour all day raises the count that makes a campaign."""
        w = _watch()
        for h in range(24):
            w.observe(f"b{h}", h * 3600.0, 8, f"be{h}")
        hits = _burst(w, DAY + 1800.0, 12)
        assert hits.index(True) > 6

    def test_spread_out_accounts_are_not_a_campaign(self) -> None:
        """One account every two hours never makes a burst."""
        assert not any(_burst(_watch(), DAY, 20, gap=7200.0))

    def test_members_are_named_once_and_the_campaign_ends(self) -> None:
        """The completing account names all; later ones name themselves; a quiet window ends it."""
        w = _watch()
        hits = [w.observe(f"a{i}", DAY + 60.0 * i, 8, f"e{i}") for i in range(7)]
        first = hits[5]
        assert first is not None and first.new_members == [f"a{i}" for i in range(6)]
        assert hits[6] is not None and hits[6].new_members == ["a6"]
        assert hits[6].campaign_id == first.campaign_id and len(hits[6].members) == 7
        assert w.observe("a0", DAY + 500.0, 9, "again") is None  # counted once per window
        assert w.observe("late", DAY + 3 * 3600.0, 8, "late") is None
        assert w.campaign_id is None

    def test_state_is_bounded(self) -> None:
        """A thousand accounts in a burst keep at most campaign_max_members of them."""
        w = _watch(campaign_max_members=16)
        _burst(w, DAY, 1000, gap=1.0)
        assert len(w.recent) <= 16 and len(w.members) <= 16


class TestEngineCampaigns:
    """The engine raises campaign alerts on a stream with 40 small out-of-domain accounts."""

    def test_campaign_accounts_are_alerted_and_benign_are_not(self) -> None:
        """Most accounts get a campaign alert at high or above, one campaign id; no user does."""
        alerts = [o for o in Engine().process_batch(campaign_stream()) if isinstance(o, Alert)]
        pooled = [a for a in alerts if a.rule.id == CAMPAIGN_RULE_ID]
        assert len({a.user.id for a in pooled}) >= 30
        assert all(a.user.id in ACCOUNTS for a in alerts)
        assert {a.clonewatch.campaign_id for a in pooled} == {pooled[0].clonewatch.campaign_id}
        assert all(a.clonewatch.risk_level in ("high", "critical") for a in pooled)
        last = pooled[-1].clonewatch.campaign_members or []
        assert set(last) >= {a.user.id for a in pooled}

    def test_without_campaigns_no_account_reaches_high(self) -> None:
        """Alone, each account stays below high: the pooling is what catches them."""
        engine = Engine(EngineConfig(campaigns=False))
        alerts = [o for o in engine.process_batch(campaign_stream()) if isinstance(o, Alert)]
        assert alerts and all(a.rule.id == RULE_ID for a in alerts)
        assert all(a.clonewatch.risk_level in ("low", "moderate") for a in alerts)

    def test_ids_are_deterministic_and_batching_does_not_matter(self) -> None:
        """One event at a time or all at once, and again: the same alert ids in the same order."""
        events = campaign_stream()
        once = [o.event.id for o in Engine().process_batch(events) if isinstance(o, Alert)]
        single = Engine()
        each = [o.event.id for e in events for o in single.process(e) if isinstance(o, Alert)]
        assert once == each
        assert len(set(once)) == len(once)
