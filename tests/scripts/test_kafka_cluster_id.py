"""The KRaft cluster id from scripts/services/kafka_cluster_id.py never starts with '-'."""

from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "services" / "kafka_cluster_id.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_cluster_id", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _draws(*values: bytes) -> Iterator[bytes]:
    yield from values


def test_a_leading_dash_or_a_reserved_id_is_drawn_again() -> None:
    """Bytes whose text starts with '-', then the zero id, are skipped for the next draw."""
    mod = _module()
    dash = b"\xf8" + bytes(15)  # first six bits 62 -> '-'
    assert mod.encode(dash).startswith("-")
    good = b"\x01" * 16
    draws = _draws(dash, bytes(16), bytes(15) + b"\x01", good)
    assert mod.cluster_id(lambda n: next(draws)) == mod.encode(good)


def test_the_text_is_kafkas_uuid_format() -> None:
    """22 URL-safe base64 characters that decode back to 16 bytes."""
    text = subprocess.run(
        [sys.executable, str(SCRIPT)], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert len(text) == 22
    assert not text.startswith("-")
    assert len(base64.urlsafe_b64decode(text + "==")) == 16


def test_many_ids_never_start_with_a_dash() -> None:
    """Over 4,000 draws (about 60 would start with '-' unfiltered) none does."""
    mod = _module()
    ids = [mod.cluster_id() for _ in range(4000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
