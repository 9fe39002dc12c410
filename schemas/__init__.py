"""Wire contracts of Clonewatch: the events it reads and the records it writes.

Every format here is a contract read by other systems; change one only with a
version bump (``SCHEMA_VERSION``) and a CHANGELOG entry.
"""

from schemas.alert import (
    CAMPAIGN_RULE_ID,
    CAMPAIGN_RULE_NAME,
    CAMPAIGN_RULE_VERSION,
    LEVEL_BANDS,
    LEVEL_ORDER,
    RULE_ID,
    RULE_NAME,
    RULE_VERSION,
    SEVERITY_BY_LEVEL,
    Alert,
    AlertEvent,
    ClonewatchContext,
    RiskEvent,
    RiskLevel,
    RiskRecord,
    RiskScore,
    RiskUser,
    SignalContribution,
    Source,
    User,
    UserRisk,
    level_for_score,
)
from schemas.dead_letter import DeadLetter
from schemas.query import (
    MAX_EVENT_BYTES,
    MAX_FEATURES,
    SCHEMA_VERSION,
    ModelOutput,
    QueryEvent,
    decode_event,
)
from schemas.registry import REGISTRY_VERSION, ModelRegistry, RegisteredModel

__all__ = [
    "CAMPAIGN_RULE_ID",
    "CAMPAIGN_RULE_NAME",
    "CAMPAIGN_RULE_VERSION",
    "LEVEL_BANDS",
    "LEVEL_ORDER",
    "MAX_EVENT_BYTES",
    "MAX_FEATURES",
    "REGISTRY_VERSION",
    "RULE_ID",
    "RULE_NAME",
    "RULE_VERSION",
    "SCHEMA_VERSION",
    "SEVERITY_BY_LEVEL",
    "Alert",
    "AlertEvent",
    "ClonewatchContext",
    "DeadLetter",
    "ModelOutput",
    "ModelRegistry",
    "QueryEvent",
    "RegisteredModel",
    "RiskEvent",
    "RiskLevel",
    "RiskRecord",
    "RiskScore",
    "RiskUser",
    "SignalContribution",
    "Source",
    "User",
    "UserRisk",
    "decode_event",
    "level_for_score",
]
