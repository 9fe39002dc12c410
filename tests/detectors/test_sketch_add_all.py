"""TailSketch.add_all is add in a loop: same reservoir, sorted view and generator state."""

from __future__ import annotations

import random

import pytest

from detectors.sketch import TailSketch


@pytest.mark.parametrize("size", [1, 5, 64, 2048])
@pytest.mark.parametrize("refresh", [1, 7, 128])
def test_add_all_equals_adding_one_by_one(size: int, refresh: int) -> None:
    rnd = random.Random(size * 1000 + refresh)
    one, many = TailSketch(size, refresh, seed=3), TailSketch(size, refresh, seed=3)
    for _ in range(40):
        values = [rnd.random() for _ in range(rnd.choice([0, 1, 2, 31, 32, 300]))]
        for v in values:
            one.add(v)
        many.add_all(values)
        assert many.seen == one.seen and many.count == one.count
        assert many._values.tobytes() == one._values.tobytes()
        assert many._sorted_list == one._sorted_list
        assert many._rng.bit_generator.state == one._rng.bit_generator.state
