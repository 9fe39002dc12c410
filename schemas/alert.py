"""Alert and RiskScore: the ECS-shaped records Clonewatch emits (schema version 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RiskLevel = Literal["none", "low", "moderate", "high", "critical"]

# Elastic's entity-risk bands: none < 20 <= low < 40 <= moderate < 70 <= high < 90 <= critical.
LEVEL_BANDS: tuple[tuple[RiskLevel, float], ...] = (
    ("critical", 90.0),
    ("high", 70.0),
    ("moderate", 40.0),
    ("low", 20.0),
)
LEVEL_ORDER: dict[RiskLevel, int] = {"none": 0, "low": 1, "moderate": 2, "high": 3, "critical": 4}
SEVERITY_BY_LEVEL: dict[RiskLevel, int] = {"low": 21, "moderate": 47, "high": 73, "critical": 99}

RULE_ID = "7c1e0f3a-5d2b-4d7e-9a51-c10e3a7c4a01"
RULE_NAME = "Model extraction through the inference API"
RULE_VERSION = "1"
# Accounts pooled into a campaign on one model (detectors/campaign.py).
CAMPAIGN_RULE_ID = "3b9d62e4-8f1a-4c55-b0d7-5e2c91a4f6b2"
CAMPAIGN_RULE_NAME = "Model extraction campaign across accounts"
CAMPAIGN_RULE_VERSION = "1"


def level_for_score(score: float) -> RiskLevel:
    """The risk level of a 0-100 score.

    >>> [level_for_score(s) for s in (5, 20, 55, 70, 95)]
    ['none', 'low', 'moderate', 'high', 'critical']
    """
    for level, floor in LEVEL_BANDS:
        if score >= floor:
            return level
    return "none"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SignalContribution(_Frozen):
    """One signal behind a risk: its raw value and its share of the score (points of 0-100)."""

    name: str
    value: float
    score: float


class ClonewatchContext(_Frozen):
    model_id: str
    risk_level: RiskLevel
    queries_observed: int
    trigger_event_id: str
    signals: list[SignalContribution]
    campaign_id: str | None = None
    campaign_members: list[str] | None = None


class AlertEvent(_Frozen):
    kind: Literal["alert"] = "alert"
    category: list[str] = Field(default_factory=lambda: ["intrusion_detection", "api"])
    type: list[str] = Field(default_factory=lambda: ["info"])
    id: str
    severity: int
    risk_score: float
    risk_score_norm: float


class Rule(_Frozen):
    id: str = RULE_ID
    name: str = RULE_NAME
    version: str = RULE_VERSION


class _Named(_Frozen):
    id: str
    name: str


class Technique(_Frozen):
    id: str = "AML.T0024"
    name: str = "Exfiltration via AI Inference API"
    subtechnique: _Named = _Named(id="AML.T0024.002", name="Extract AI Model")


class Threat(_Frozen):
    framework: str = "MITRE ATLAS"
    tactic: _Named = _Named(id="AML.TA0010", name="Exfiltration")
    technique: Technique = Technique()


class User(_Frozen):
    id: str


class Source(_Frozen):
    ip: str


class Alert(_Frozen):
    """An alert: a client's risk on a model rose into a higher level."""

    timestamp: str = Field(alias="@timestamp")
    event: AlertEvent
    rule: Rule = Rule()
    threat: Threat = Threat()
    user: User
    source: Source | None = None
    message: str
    clonewatch: ClonewatchContext

    def to_dict(self) -> dict[str, Any]:
        """The wire form (``@timestamp``, no null fields)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class UserRisk(_Frozen):
    calculated_score_norm: float
    calculated_level: RiskLevel


class RiskUser(_Frozen):
    id: str
    risk: UserRisk


class RiskEvent(_Frozen):
    kind: Literal["metric"] = "metric"
    id: str


class RiskScore(_Frozen):
    """The latest risk of one (client, model)."""

    timestamp: str = Field(alias="@timestamp")
    event: RiskEvent
    user: RiskUser
    clonewatch: ClonewatchContext

    def to_dict(self) -> dict[str, Any]:
        """The wire form (``@timestamp``, no null fields)."""
        return self.model_dump(by_alias=True, exclude_none=True)


@dataclass(slots=True)
class RiskRecord:
    """A RiskScore already in its wire form, as the engine emits it on its hot path.

    The engine writes one for most queries of a slowly querying client, so it
    builds the document directly instead of eleven validated models; every
    document it builds satisfies ``RiskScore`` (tested), and ``as_model``
    gives the validated model. Treat ``doc`` as read-only.

    >>> r = RiskRecord("id1", "acme", "none", {"@timestamp": "2026-01-01T00:00:00Z",
    ...     "event": {"kind": "metric", "id": "id1"}, "user": {"id": "acme", "risk":
    ...     {"calculated_score_norm": 0.0, "calculated_level": "none"}}, "clonewatch":
    ...     {"model_id": "m", "risk_level": "none", "queries_observed": 100,
    ...      "trigger_event_id": "e9", "signals": []}})
    >>> r.as_model().user.risk.calculated_level
    'none'
    """

    id: str
    client_id: str
    level: RiskLevel
    doc: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The wire form (the same document each call)."""
        return self.doc

    def as_model(self) -> RiskScore:
        """The validated RiskScore of this record."""
        return RiskScore.model_validate(self.doc)
