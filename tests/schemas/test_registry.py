"""The model registry v1 contract (schemas/registry.py): what parses and what is refused."""

from __future__ import annotations

import orjson
import pytest

from schemas.registry import MAX_REGISTRY_BYTES, ModelRegistry


def _doc(**model: object) -> bytes:
    return orjson.dumps({"version": 1, "models": {"m": model}})


class TestParse:
    def test_minimal_entry(self) -> None:
        """A feature count alone is a whole entry; the rest stays unset."""
        r = ModelRegistry.parse(_doc(n_features=3))
        assert r.models["m"].n_features == 3
        assert r.models["m"].n_classes is None and r.models["m"].feature_ranges is None

    def test_full_entry(self) -> None:
        r = ModelRegistry.parse(_doc(n_features=2, n_classes=10, feature_ranges=[[0, 1], [-1, 1]]))
        assert r.models["m"].n_classes == 10
        assert r.models["m"].feature_ranges == [(0.0, 1.0), (-1.0, 1.0)]

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            (b"{", "not JSON"),
            (b"[]", "model registry: the document: Input should be"),
            (orjson.dumps({"version": 2, "models": {}}), "version: Input should be 1"),
            (orjson.dumps({"version": 1}), "models: Field required"),
            (_doc(n_features=0), "models.m.n_features: Input should be greater than or equal"),
            (_doc(n_features="3"), "models.m.n_features: Input should be a valid integer"),
            (_doc(n_features=2, feature_ranges=[[1, 0], [0, 1]]), "low 1.0 above high 0.0"),
            (_doc(n_features=1, feature_ranges=[[0, "nan"]]), "feature_ranges"),
            (_doc(n_features=1, color="red"), "models.m.color: Extra inputs are not permitted"),
            (_doc(n_features=2, n_classes=1), "n_classes: Input should be greater than or equal"),
            (
                orjson.dumps({"version": 1, "models": {"": {"n_features": 1}}}),
                "models: id '': String should have",
            ),
        ],
    )
    def test_refused_with_the_place_named(self, doc: bytes, message: str) -> None:
        """Each bad registry is a ValueError that says where and what."""
        with pytest.raises(ValueError, match=r"^model registry: ") as exc:
            ModelRegistry.parse(doc)
        assert message in str(exc.value)

    def test_too_large(self) -> None:
        """Bytes past the cap are refused before any parsing."""
        with pytest.raises(ValueError, match="larger than"):
            ModelRegistry.parse(b" " * (MAX_REGISTRY_BYTES + 1))
