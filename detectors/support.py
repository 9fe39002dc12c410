"""Which models the engine tracks, and how many distinct clients use each (bounded).

A model id costs a baseline (about 130 KB) as soon as anyone sends it, and ids cost an
attacker nothing: 20,000 made-up ids would take gigabytes. :class:`ModelSupport` keeps at
most ``EngineConfig.max_models`` models. Beyond that, a new id first pushes out the least
recently used *lone* model, one fewer than ``lone_model_clients`` distinct clients use
(and whose baseline is not frozen: a frozen baseline had many clients); when every tracked
model is used by that many clients, the new id's events are pooled into one overflow model
(:data:`OVERFLOW_MODEL`), counted. So models many clients use are never the ones evicted,
and a flood of decoy ids only evicts other decoys.

Models a registry names (``pinned``, :mod:`schemas.registry`) always have a place: they
are tracked outside the bound and never evicted, so the operator's models cannot be pushed
out or pooled however many ids others send.

The same distinct-client count ranks a client's own models (``ClientState.model``): a
decoy model nobody else uses cannot push out the state of a model the client really
queries, and the fan-out test (:mod:`detectors.fanout`) counts the lone models a client
keeps.

>>> from detectors.config import EngineConfig
>>> s = ModelSupport(EngineConfig(max_models=2))
>>> s.admit("a", frozen=lambda m: False), s.admit("b", frozen=lambda m: False)
(('a', None), ('b', None))
>>> for owner in range(4):
...     s.see("a", owner)
>>> s.support("a"), s.support("b")
(4, 0)
>>> s.admit("c", frozen=lambda m: False)  # "b" is lone: it makes room
('c', 'b')
>>> s.see("c", 1); s.see("c", 2); s.see("c", 3); s.see("c", 4)
>>> s.admit("d", frozen=lambda m: False)  # both tracked models are used by four clients
('__overflow__', None)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from detectors.config import EngineConfig

OVERFLOW_MODEL: Final = "__overflow__"
"""The model id under which events of models beyond ``max_models`` are scored together."""


class ModelSupport:
    """The tracked models in least-recently-admitted order, each with the distinct clients
    seen on it (kept up to ``lone_model_clients``: only "lone or not" matters)."""

    def __init__(self, config: EngineConfig, pinned: frozenset[str] = frozenset()) -> None:
        self.config = config
        self.pinned = pinned  # registered models: outside the bound, never evicted
        self._pinned_tracked = 0
        self._owners: OrderedDict[str, set[int]] = OrderedDict()
        self.evicted = 0  # lone models pushed out to make room
        self.pooled_models = 0  # ids sent to the overflow model (each time one is refused)

    def __len__(self) -> int:
        return len(self._owners)

    @property
    def bounded(self) -> int:
        """Tracked models that count against ``max_models`` (the registered ones do not)."""
        return len(self._owners) - self._pinned_tracked

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._owners

    def support(self, model_id: str) -> int:
        """Distinct clients seen on the model, at most ``lone_model_clients`` (0: untracked)."""
        owners = self._owners.get(model_id)
        return 0 if owners is None else len(owners)

    def lone(self, model_id: str) -> bool:
        """Whether fewer than ``lone_model_clients`` distinct clients use the model."""
        return self.support(model_id) < self.config.lone_model_clients

    def see(self, model_id: str, owner: int) -> None:
        """A client's first query to a model (or its first since its state was evicted)."""
        owners = self._owners.get(model_id)
        if owners is not None and len(owners) < self.config.lone_model_clients:
            owners.add(owner)

    def owners(self) -> dict[str, list[int]]:
        """Every tracked model's distinct clients seen, in tracking order (for snapshots)."""
        return {m: sorted(o) for m, o in self._owners.items()}

    def restore(self, owners: dict[str, list[int]]) -> None:
        """Take back what :meth:`owners` gave (models already tracked keep what they saw too).

        >>> from detectors.config import EngineConfig
        >>> a = ModelSupport(EngineConfig())
        >>> _ = a.admit("m", frozen=lambda m: False); a.see("m", 7)
        >>> b = ModelSupport(EngineConfig()); b.restore(a.owners()); b.support("m")
        1
        """
        need = self.config.lone_model_clients
        for model_id, seen in owners.items():
            if model_id not in self._owners:
                if model_id in self.pinned:
                    self._pinned_tracked += 1
                elif self.bounded >= self.config.max_models:
                    continue
            mine = self._owners.setdefault(model_id, set())
            for owner in seen:
                if len(mine) < need:
                    mine.add(int(owner))

    def touch(self, model_id: str) -> None:
        """The model was queried: it is the most recently used."""
        if model_id in self._owners:
            self._owners.move_to_end(model_id)

    def admit(self, model_id: str, frozen: Callable[[str], bool]) -> tuple[str, str | None]:
        """Track a model the engine has no baseline for: the id to score it under, and the
        lone model evicted to make room (``None`` if none was)."""
        if model_id in self._owners or model_id == OVERFLOW_MODEL:
            return model_id, None
        if model_id in self.pinned:
            self._pinned_tracked += 1
            self._owners[model_id] = set()
            return model_id, None
        victim: str | None = None
        if self.bounded >= self.config.max_models:
            need = self.config.lone_model_clients
            victim = next(
                (
                    m
                    for m, o in self._owners.items()
                    if len(o) < need and m not in self.pinned and not frozen(m)
                ),
                None,
            )
            if victim is None:
                self.pooled_models += 1
                return OVERFLOW_MODEL, None
            del self._owners[victim]
            self.evicted += 1
        self._owners[model_id] = set()
        return model_id, victim
