"""Issue 17's red team: each evasion of the seed-3 day against the engine, with its targets.

Targets (issue 17, "Figures to reach"): at least 7 of the 8 attackers caught under every
evasion, at most 1 % of benign clients flagged (high or above), and 8 of 8 under warm-up
poisoning and dimension hijack, whose fixes are structural. An evasion the engine loses to
today is marked ``xfail(strict=True)``: when a fix makes it pass, the strict xfail fails the
run, and the mark is then removed. The day is the conftest's (half the benign scale).
"""

from __future__ import annotations

import math

import pytest

from clonewatch.commands.redteam import RedteamRow, evasion_names
from clonewatch.sim.evasions import DRIFT_PREFIX

MIN_CAUGHT = 7
STRUCTURAL = frozenset(
    {
        "warm-up poisoning 1e20",
        "warm-up poisoning 1e12",
        "warm-up poisoning 1e308",
        "dimension hijack",
    }
)
MAX_BENIGN_SHARE = 0.01
DRIFTED_KEYS = 36  # 12 keys of one new tenant on each of the day's three models

#: Evasions the engine loses to today, and why (issue 17's items).
FAILING_TODAY: dict[str, str] = {
    "rotation over many /24s": "issue 17 item 5: keys that share no network, fingerprint or "
    "user agent meet only in the pool of every source's suspects, which JbDA's and the slow "
    "attacker's keys rarely join (no behaviour fingerprint yet); 6/8 caught",
    "many /24s, one account": "issue 17 item 5: the account's pool reaches high, but without a "
    "shared user agent it names only implicated keys, and JbDA's and the slow attacker's "
    "keys are rarely in the tail one by one; 6/8 caught",
}

#: What the evasions still lost are caught today: a floor, so that a change cannot lose more.
FLOOR_TODAY: dict[str, int] = {"rotation over many /24s": 6, "many /24s, one account": 6}

#: Padding ratios whose median queries to alert still exceeds the bound, and why.
SLOW_TODAY: dict[int, str] = dict.fromkeys(
    (3, 4),
    "issue 17 item 4: the count of suspicious queries catches padded attackers, but a "
    "suspicious query is worth about 1 nat to it where an undiluted one adds up to 30 to "
    "novelty: 105 and 156 queries at 3:1 and 4:1 against bounds of 100 and 125",
)

#: Drifted honest customers (issue 17 item 6) the engine still flags, and why: at most 1 %
#: of them may be flagged, and today far more are.
DRIFT_FAILING_TODAY: dict[str, str] = {
    f"drifted customers: {shape}": "issue 17 item 6: a new honest population far from the "
    "model's usual traffic never teaches the baseline (its keys are above the learning risk "
    f"at once), so novelty and self-similarity flag it; {flagged} of 36 drifted keys flagged"
    for shape, flagged in (("shifted", 25), ("rescaled", 17), ("other source", 12))
}

#: Benign shapes the identity pools must leave alone entirely, not just under 1 %.
NAT_ROWS = ("honest clients behind shared NATs", "attackers inside a carrier NAT")


def _cases(failing: dict[str, str]) -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=failing[name]))
        if name in failing
        else name
        for name in evasion_names()
    ]


def _row(rows: dict[str, RedteamRow], evasion: str) -> RedteamRow:
    row = rows[evasion]
    assert len(row.attackers) == 8, "the seed-3 day has eight attackers"
    return row


@pytest.mark.slow
class TestCatchRate:
    """Attackers caught: alerts at high or above naming at least half of the keys used."""

    @pytest.mark.parametrize("evasion", _cases(FAILING_TODAY))
    def test_attackers_caught(self, redteam_rows: dict[str, RedteamRow], evasion: str) -> None:
        """At least 7 of 8 attackers caught (8 of 8 for poisoning and dimension hijack)."""
        row = _row(redteam_rows, evasion)
        need = len(row.attackers) if evasion in STRUCTURAL else MIN_CAUGHT
        missed = [a.name for a in row.attackers if not a.caught]
        assert row.caught >= need, f"{row.caught}/{len(row.attackers)} caught; missed {missed}"

    @pytest.mark.parametrize("evasion", sorted(FLOOR_TODAY))
    def test_lost_evasions_keep_their_floor(
        self, redteam_rows: dict[str, RedteamRow], evasion: str
    ) -> None:
        """An evasion the engine still loses is caught at least as often as today."""
        row = _row(redteam_rows, evasion)
        assert row.caught >= FLOOR_TODAY[evasion], [a.name for a in row.attackers if not a.caught]


@pytest.mark.slow
class TestBenignCost:
    """The evasions must not buy their misses with honest clients' alerts either."""

    @pytest.mark.parametrize("evasion", _cases(DRIFT_FAILING_TODAY))
    def test_benign_flagged(self, redteam_rows: dict[str, RedteamRow], evasion: str) -> None:
        """At most 1 % of benign clients flagged at high or above."""
        row = _row(redteam_rows, evasion)
        assert row.benign_flag_rate <= MAX_BENIGN_SHARE, row.benign_flagged_keys

    @pytest.mark.parametrize(
        "evasion", [c for c in _cases(DRIFT_FAILING_TODAY) if "drifted" in str(c)]
    )
    def test_drifted_customers_flagged(
        self, redteam_rows: dict[str, RedteamRow], evasion: str
    ) -> None:
        """At most 1 % of the drifted customers' own keys flagged (issue 17 item 6)."""
        row = _row(redteam_rows, evasion)
        flagged = [k for k in row.benign_flagged_keys if k.startswith(DRIFT_PREFIX)]
        assert len(flagged) <= MAX_BENIGN_SHARE * DRIFTED_KEYS, flagged

    @pytest.mark.parametrize("evasion", NAT_ROWS)
    def test_shared_addresses_flag_no_one(
        self, redteam_rows: dict[str, RedteamRow], evasion: str
    ) -> None:
        """Honest keys pooled by a shared address (an office NAT, a carrier's CGNAT), with or
        without an attacker among them, are never flagged for it."""
        assert _row(redteam_rows, evasion).benign_flagged_keys == []

    def test_day_is_whole(self, redteam_rows: dict[str, RedteamRow]) -> None:
        """Every evasion replayed the whole day: no event became a dead letter unexplained."""
        for name, row in redteam_rows.items():
            reasons = set(row.dead_letter_reasons)
            assert reasons <= {"feature dimension mismatch"}, (name, row.dead_letter_reasons)


@pytest.mark.slow
class TestQueriesToAlert:
    """Padding may delay an alert, at worst in proportion to the padding (issue 17 item 4)."""

    @pytest.mark.parametrize(
        "k",
        [
            pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=SLOW_TODAY[k]))
            if k in SLOW_TODAY
            else k
            for k in (2, 3, 4)
        ],
    )
    def test_dilution_delay(self, redteam_rows: dict[str, RedteamRow], k: int) -> None:
        """The median queries to alert under k:1 padding stays within 2 (k + 1) times the
        undiluted median."""
        plain = redteam_rows["none"].median_queries_to_alert
        diluted = redteam_rows[f"dilution {k}:1"].median_queries_to_alert
        assert math.isfinite(plain)
        assert diluted <= 2 * (k + 1) * plain, (plain, diluted)
