"""QueryEvent, schema version 1: one inference query as the serving tier logs it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from schemas.dead_letter import DeadLetter

SCHEMA_VERSION = 1
# The size cap of one event (a log line or a Kafka message value). It holds the largest valid
# event: 4,096 features and 4,096 probabilities, each in the longest form a float64 takes in
# shortest round-trip notation (24 bytes, -2.2250738585072014e-308, and a comma), ids at their
# maximum length written as JSON escapes (12 bytes a character), about 209 KB in all, which
# leaves some 50 KB for user_agent, labels and the rest (tests/schemas/test_query_limits.py).
MAX_EVENT_BYTES = 256 * 1024
MAX_FEATURES = 4096
# The accepted timestamps: their UTC instant, in epoch seconds, from 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59Z, the range the engine's RFC 3339 outputs can show. A time inside the
# range written with an offset that puts it outside (9999-12-31T23:59:59-14:00 is in year
# 10000 UTC) is a dead letter like any other out-of-range time.
MIN_TIMESTAMP = -62135596800  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z
_OUT_OF_RANGE = (
    "timestamp out of range: its UTC time must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
)

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Probability = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0, le=1.0)]


class ModelOutput(BaseModel):
    """What the model answered: a label, a confidence and/or class probabilities."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    label: StrictStr | StrictInt | None = None
    confidence: Probability | None = None
    probabilities: list[Probability] | None = Field(default=None, max_length=MAX_FEATURES)


class QueryEvent(BaseModel):
    """One query to a model's prediction API (QueryEvent v1).

    >>> e = QueryEvent.model_validate({"event_id": "e1", "timestamp": 1767225600,
    ...     "client_id": "acme", "model_id": "digits", "features": [0, 1.5]})
    >>> e.ts, e.features
    (1767225600.0, [0.0, 1.5])
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: StrictStr = Field(min_length=1, max_length=128)
    timestamp: datetime
    client_id: StrictStr = Field(min_length=1, max_length=256)
    model_id: StrictStr = Field(min_length=1, max_length=256)
    features: list[Finite] | None = Field(default=None, max_length=MAX_FEATURES)
    output: ModelOutput | None = None
    source_ip: StrictStr | None = None
    user_agent: StrictStr | None = None
    status_code: StrictInt | None = None
    latency_ms: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0)] | None = None
    labels: dict[StrictStr, StrictStr] | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, v: Any) -> datetime:
        if type(v) is float and MIN_TIMESTAMP <= v <= MAX_TIMESTAMP:  # the common case first
            return datetime.fromtimestamp(v, UTC)  # (NaN and infinities fail the comparison)
        if isinstance(v, bool):
            raise ValueError("timestamp must be an RFC 3339 string or epoch seconds")
        if isinstance(v, int | float):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError("timestamp must be finite")
            if not MIN_TIMESTAMP <= v <= MAX_TIMESTAMP:  # an int of any size compares exactly
                raise ValueError(_OUT_OF_RANGE)
            return datetime.fromtimestamp(float(v), tz=UTC)
        if isinstance(v, str):
            try:
                parsed = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError as exc:
                raise ValueError("timestamp is not an RFC 3339 date-time") from exc
            if parsed.tzinfo is None:
                raise ValueError("timestamp must carry a UTC offset")
            if not MIN_TIMESTAMP <= parsed.timestamp() <= MAX_TIMESTAMP:  # e.g. -14:00 in 9999
                raise ValueError(_OUT_OF_RANGE)
            return parsed
        raise ValueError("timestamp must be an RFC 3339 string or epoch seconds")

    @field_validator("source_ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return str(ip_address(v))
        except ValueError as exc:
            raise ValueError("source_ip is not an IPv4 or IPv6 address") from exc

    @property
    def ts(self) -> float:
        """The timestamp as epoch seconds."""
        return self.timestamp.timestamp()


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "event"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "invalid event: " + "; ".join(parts)


def _json_error(text: str, exc: orjson.JSONDecodeError) -> str:
    """The parser's message, naming a non-finite constant when that is what it met."""
    at = text[exc.pos : exc.pos + 9]
    for constant in ("NaN", "Infinity", "-Infinity"):
        if at.startswith(constant):
            return f"{constant} is not a JSON number (char {exc.pos})"
    return str(exc)


def _parse_text(data: bytes, received_at: float | None) -> object:
    """Bytes that orjson did not take, step by step: the dead letter saying why (empty, not
    UTF-8, or the parser's message with its position), else the parsed text."""
    if not data.strip():
        return DeadLetter.of(data, "empty message", received_at)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return DeadLetter.of(data, "not UTF-8 text", received_at)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return DeadLetter.of(data, f"not JSON: {_json_error(text, exc)}", received_at)


def decode_event(raw: bytes | str, *, received_at: float | None = None) -> QueryEvent | DeadLetter:
    """Decode one raw message into a QueryEvent, or a DeadLetter saying why not.

    >>> decode_event(b'{"event_id": "a"}').reason
    'invalid event: timestamp: Field required; client_id: Field required; model_id: Field required'
    >>> decode_event(b"\\xff").reason
    'not UTF-8 text'
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if len(data) > MAX_EVENT_BYTES:
        return DeadLetter.of(data, f"event larger than {MAX_EVENT_BYTES} bytes", received_at)
    try:
        obj = orjson.loads(data)  # rejects NaN and Infinity, which JSON does not have
    except orjson.JSONDecodeError:
        obj = _parse_text(data, received_at)  # valid UTF-8 JSON parses without this
        if isinstance(obj, DeadLetter):
            return obj
    if not isinstance(obj, dict):
        return DeadLetter.of(data, f"not a JSON object but {type(obj).__name__}", received_at)
    try:
        # model_validate(obj) without its per-call keyword handling: the same validator
        event: QueryEvent = QueryEvent.__pydantic_validator__.validate_python(obj)
    except ValidationError as exc:
        return DeadLetter.of(data, _reason(exc), received_at)
    return event
