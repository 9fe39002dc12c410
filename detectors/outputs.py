"""The wire documents the engine emits: Alerts and RiskScores, built from a verdict.

The engine (:mod:`detectors.engine`) decides when a client's risk is reported; this module
builds what is reported: the ECS-shaped :class:`~schemas.Alert` of a client or of a campaign
account, and the :class:`~schemas.RiskRecord` of the latest-risk index. Pure and
deterministic: the same verdict gives the same bytes (ids are digests of what they name).

>>> digest("risk", "c", "m", 100, 0) == digest("risk|c|m|100|0")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from detectors.base import Reading
from detectors.campaign import CampaignHit, CampaignWatch
from detectors.config import EngineConfig
from detectors.identity import Pool
from detectors.isotime import iso
from detectors.rounding import round_to
from detectors.state import ModelClientState
from schemas import (
    CAMPAIGN_RULE_ID,
    CAMPAIGN_RULE_NAME,
    CAMPAIGN_RULE_VERSION,
    RULE_ID,
    SEVERITY_BY_LEVEL,
    Alert,
    AlertEvent,
    ClonewatchContext,
    QueryEvent,
    RiskLevel,
    RiskRecord,
    Source,
    User,
)
from schemas.alert import Rule

Output = Alert | RiskRecord
CAMPAIGN_RULE = Rule(id=CAMPAIGN_RULE_ID, name=CAMPAIGN_RULE_NAME, version=CAMPAIGN_RULE_VERSION)
SIGNAL_TITLES = {
    "novelty": "inputs unlike the model's benign traffic",
    "steps": "systematic small steps between queries",
    "coverage": "unusually wide coverage of the input space",
    "low_margin": "queries near the decision boundary",
    "class_spread": "predicted classes spread more evenly than natural traffic",
    "volume": "high query volume",
    "tail_count": "many queries far in the tail of the model's benign traffic",
    "model_fanout": "queries to models almost no other client uses",
    "malformed_input": "queries its model cannot take (wrong shape or outside its domain)",
}


def signal_title(name: str, readings: dict[str, Reading]) -> str:
    """What a signal's evidence says, in words an analyst reads (with its count if any).

    >>> signal_title("model_fanout", {"model_fanout": Reading(9.0, 30.0)})
    'queries to 9 models almost no other client uses'
    """
    reading = readings.get(name)
    if name == "model_fanout" and reading is not None:
        return f"queries to {reading.value:.0f} models almost no other client uses"
    if name == "malformed_input" and reading is not None:
        return f"{reading.value:.0f} queries its model cannot take (wrong shape or out of domain)"
    if name == "tail_count" and reading is not None:
        return f"{reading.value:.0%} of recent queries far in the tail of the model's traffic"
    return SIGNAL_TITLES.get(name, name)


def by_points(kv: tuple[str, float]) -> float:
    """Sort key of a ``(signal, points)`` pair: most points first."""
    return -kv[1]


def digest(*parts: object) -> str:
    """A document id: the first 128 bits of the SHA-256 of the parts joined by ``|``."""
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Verdict:
    """The risk of a (client, model) after one query, and why: what its documents report."""

    __slots__ = ("level", "readings", "risk", "shares")

    def __init__(
        self, risk: float, level: RiskLevel, shares: dict[str, float], readings: dict[str, Reading]
    ) -> None:
        self.risk = risk
        self.level = level
        self.shares = shares
        self.readings = readings


def campaign_alert(
    ev: QueryEvent,
    st: ModelClientState,
    hit: CampaignHit,
    watch: CampaignWatch,
    member: str,
    config: EngineConfig,
) -> Alert:
    """One account's campaign alert, raised on the event that found the campaign."""
    own = member == ev.client_id
    seen = watch.member(member)
    n = st.n if own or seen is None else seen.n
    ip = st.source_ip if own else (seen.source_ip if seen is not None else "")
    score = round_to(hit.risk, 2)
    k = len(hit.members)
    minutes = config.campaign_window_s / 60.0
    context = {
        "model_id": ev.model_id,
        "risk_level": hit.level,
        "queries_observed": n,
        "trigger_event_id": ev.event_id,
        "signals": [{"name": "campaign", "value": float(k), "score": score}],
        "campaign_id": hit.campaign_id,
        "campaign_members": hit.members,
    }
    return Alert(
        timestamp=iso(ev.ts),
        event=AlertEvent(
            id=digest(CAMPAIGN_RULE_ID, member, ev.model_id, hit.campaign_id),
            severity=SEVERITY_BY_LEVEL[hit.level],
            risk_score=score,
            risk_score_norm=score,
        ),
        rule=CAMPAIGN_RULE,
        user=User(id=member),
        source=Source(ip=ip) if ip else None,
        message=(
            f"Client {member} is one of {k} accounts whose risk on model {ev.model_id} rose "
            f"in their first queries within {minutes:.0f} minutes of each other, led by "
            f"{SIGNAL_TITLES.get(watch.profile, watch.profile)}: far more than the model's "
            f"usual rate, a likely extraction campaign ({hit.level}, risk {hit.risk:.0f})."
        ),
        clonewatch=ClonewatchContext.model_validate(context),
    )


def pool_alert(
    ev: QueryEvent,
    st: ModelClientState,
    v: Verdict,
    pool: Pool,
    member: str,
    members: list[str],
) -> Alert:
    """One key's alert when the young keys of its source, scored together, look like
    extraction (:mod:`detectors.identity`): a campaign alert naming every pooled key."""
    context = clonewatch_context(ev, st, v)
    context["campaign_id"] = pool.pool_id
    context["campaign_members"] = members
    score = round_to(v.risk, 2)
    top = [k for k, pts in sorted(v.shares.items(), key=by_points) if pts >= 1.0][:3]
    why = "; ".join(f"{signal_title(k, v.readings)} ({v.shares[k]:.0f} pts)" for k in top)
    return Alert(
        timestamp=iso(ev.ts),
        event=AlertEvent(
            id=digest(CAMPAIGN_RULE_ID, member, ev.model_id, pool.pool_id, v.level, st.episode),
            severity=SEVERITY_BY_LEVEL[v.level],
            risk_score=score,
            risk_score_norm=score,
        ),
        rule=CAMPAIGN_RULE,
        user=User(id=member),
        source=Source(ip=ev.source_ip) if member == ev.client_id and ev.source_ip else None,
        message=(
            f"Client {member} is one of {len(members)} keys {pool.describe()} whose queries "
            f"to model {ev.model_id}, scored together, look like extraction: risk "
            f"{v.risk:.0f} ({v.level}) after {st.n} pooled queries; "
            f"{why or 'several weak signals'}."
        ),
        clonewatch=ClonewatchContext.model_validate(context),
    )


def clonewatch_context(ev: QueryEvent, st: ModelClientState, v: Verdict) -> dict[str, Any]:
    """The ``clonewatch`` object of an output, in its wire form."""
    readings = v.readings
    shares: Iterable[tuple[str, float]] = v.shares.items()
    if v.risk != 0.0:  # at risk 0 every share is 0: a stable sort keeps their order
        shares = sorted(shares, key=by_points)
    signals = [
        {
            "name": k,
            "value": val if (val := readings[k].value) == 0.0 else round_to(val, 4),
            "score": pts if pts == 0.0 else round_to(pts, 2),  # a zero is kept as it is
        }
        for k, pts in shares
        if k in readings
    ]
    return {
        "model_id": ev.model_id,
        "risk_level": v.level,
        "queries_observed": st.n,
        "trigger_event_id": ev.event_id,
        "signals": signals,
    }


def alert(ev: QueryEvent, st: ModelClientState, v: Verdict) -> Alert:
    """A client's alert on rising risk: its level, score, the leading signals and why."""
    top = [k for k, pts in sorted(v.shares.items(), key=by_points) if pts >= 1.0][:3]
    why = "; ".join(f"{signal_title(k, v.readings)} ({v.shares[k]:.0f} pts)" for k in top)
    score = round_to(v.risk, 2)
    return Alert(
        timestamp=iso(ev.ts),
        event=AlertEvent(
            id=digest(RULE_ID, ev.client_id, ev.model_id, v.level, st.episode),
            severity=SEVERITY_BY_LEVEL[v.level],
            risk_score=score,
            risk_score_norm=score,
        ),
        user=User(id=ev.client_id),
        source=Source(ip=st.source_ip) if st.source_ip else None,
        message=(
            f"Client {ev.client_id} may be extracting model {ev.model_id}: risk {v.risk:.0f} "
            f"({v.level}) after {st.n} queries; {why or 'several weak signals'}."
        ),
        clonewatch=ClonewatchContext.model_validate(clonewatch_context(ev, st, v)),
    )


def risk_record(ev: QueryEvent, st: ModelClientState, v: Verdict, ts: float) -> RiskRecord:
    """A client's risk score on one model, the document the latest-risk index keeps."""
    # digest("risk", client, model, n, episode), without the generic join
    text = f"risk|{ev.client_id}|{ev.model_id}|{st.n}|{st.episode}"
    rid = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    doc = {
        "@timestamp": iso(ts),
        "event": {"kind": "metric", "id": rid},
        "user": {
            "id": ev.client_id,
            "risk": {"calculated_score_norm": round_to(v.risk, 2), "calculated_level": v.level},
        },
        "clonewatch": clonewatch_context(ev, st, v),
    }
    return RiskRecord(rid, ev.client_id, v.level, doc)
