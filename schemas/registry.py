"""The model registry, version 1: what an operator knows about the models it serves.

An optional JSON file (``clonewatch replay --models FILE``, ``CLONEWATCH_MODEL_REGISTRY`` for
the worker) naming each model's feature count and, optionally, its class count and the valid
range of each feature. A registered model's input dimension is the registry's from its first
event (no learning by agreement needed), values outside its stated ranges are out of its
domain (evidence against the sender, clipped before scoring), and its baseline always has a
place: the bound on tracked models (``max_models``) applies to ids the registry does not name.

>>> r = ModelRegistry.parse(b'{"version": 1, "models": {"fraud-v3": {"n_features": 2,'
...                         b' "n_classes": 2, "feature_ranges": [[0, 1], [-5, 5]]}}}')
>>> r.models["fraud-v3"].n_features, r.models["fraud-v3"].feature_ranges
(2, [(0.0, 1.0), (-5.0, 5.0)])
>>> ModelRegistry.parse(b'{"version": 1, "models": {"m": {"n_features": 2,'
...                     b' "feature_ranges": [[0, 1]]}}}')
Traceback (most recent call last):
...
ValueError: model registry: models.m: feature_ranges has 1 ranges for 2 features
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from schemas.query import MAX_FEATURES

REGISTRY_VERSION = 1
MAX_REGISTERED_MODELS = 100_000  # a registry is the operator's list, not a stream
MAX_REGISTRY_BYTES = 64 * 1024 * 1024  # read with this cap: a registry file is never read whole

Finite = Annotated[float, Field(allow_inf_nan=False)]


class RegisteredModel(BaseModel):
    """One model as its owner states it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_features: StrictInt = Field(ge=1, le=MAX_FEATURES)
    n_classes: StrictInt | None = Field(default=None, ge=2, le=MAX_FEATURES)
    feature_ranges: list[tuple[Finite, Finite]] | None = Field(
        default=None, max_length=MAX_FEATURES
    )

    @model_validator(mode="after")
    def _ranges_fit(self) -> RegisteredModel:
        ranges = self.feature_ranges
        if ranges is not None:
            if len(ranges) != self.n_features:
                raise ValueError(
                    f"feature_ranges has {len(ranges)} ranges for {self.n_features} features"
                )
            for i, (lo, hi) in enumerate(ranges):
                if lo > hi:
                    raise ValueError(f"feature_ranges[{i}]: low {lo} above high {hi}")
        return self


ModelId = Annotated[str, Field(min_length=1, max_length=256)]


class ModelRegistry(BaseModel):
    """Model id -> :class:`RegisteredModel`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    models: dict[ModelId, RegisteredModel] = Field(max_length=MAX_REGISTERED_MODELS)

    @classmethod
    def parse(cls, data: bytes) -> ModelRegistry:
        """Parse a registry file's bytes; ``ValueError`` names the first problem."""
        if len(data) > MAX_REGISTRY_BYTES:
            raise ValueError(f"model registry: larger than {MAX_REGISTRY_BYTES} bytes")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"model registry: not JSON ({exc})") from None
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = first["loc"]
            if "[key]" in loc:  # a model id itself is refused
                where = f"models: id {loc[1]!r}"
            else:
                where = ".".join(str(p) for p in loc) or "the document"
            msg = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"model registry: {where}: {msg}") from None
