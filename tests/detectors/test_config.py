"""Engine settings outside their range are refused with the reason."""

from __future__ import annotations

import pytest

from detectors.config import EngineConfig


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("class_buckets", 0, "class_buckets must be 1-255"),
        ("class_buckets", 256, "class_buckets must be 1-255"),
        ("self_contrast", 0.0, "self_contrast must be in"),
        ("self_contrast", 1.5, "self_contrast must be in"),
    ],
)
def test_out_of_range_setting_is_refused(field: str, value: float, reason: str) -> None:
    """Each bound is checked when the configuration is built."""
    with pytest.raises(ValueError, match=reason):
        EngineConfig(**{field: value})  # type: ignore[arg-type]


def test_defaults_are_valid() -> None:
    """The documented defaults pass their own checks."""
    cfg = EngineConfig()
    assert 1 <= cfg.class_buckets <= 255 and 0.0 < cfg.self_contrast <= 1.0
