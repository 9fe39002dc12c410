"""The truth file of ``clonewatch evaluate``: the simulator's full form, or a minimal hand-made one.

Only each client's role is required, so a red-team exercise or a labelled incident can be
scored without the simulator. Everything else is filled in from the log or left unknown:

>>> t = Truth.parse({"clients": {"a": "attacker", "b": {"role": "benign", "kind": "heavy"}}})
>>> [(x.name, x.family, x.members) for x in t.attackers]
[('a', 'unlabelled', ['a'])]
>>> t.clients["b"].kind, t.clients["a"].model_id
('heavy', None)

Attacker clients sharing a ``campaign`` form one attacker named after it; an attacker client
that no ``attackers`` entry names is an attacker of its own. Without a ``fidelity_curve`` the
fidelity columns read ``-``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROLES = ("benign", "attacker")


@dataclass
class TruthClient:
    """One client: role, kind, model (``None``: its first in the log) and campaign."""

    role: str
    kind: str
    model_id: str | None = None
    campaign: str | None = None


@dataclass
class TruthAttacker:
    """One attacker: its accounts, family and, when known, its surrogate's fidelity curve."""

    name: str
    family: str
    members: list[str]
    model_id: str | None = None
    queries: int | None = None
    fidelity_curve: list[list[float]] = field(default_factory=list)
    final_fidelity: float | None = None


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ValueError(f"truth: {where} must be a non-empty string, got {value!r}")
    return str(value)


def _optional_text(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    return None if value is None else _text(value, f"{where}.{key}")


def _client(cid: str, entry: Any) -> TruthClient:
    if isinstance(entry, str):
        entry = {"role": entry}
    if not isinstance(entry, Mapping):
        raise ValueError(f"truth: clients.{cid} must be an object or a role string")
    role = entry.get("role")
    if role not in ROLES:
        raise ValueError(f"truth: clients.{cid}.role must be 'benign' or 'attacker', got {role!r}")
    kind = _optional_text(entry, "kind", f"clients.{cid}") or (
        "benign" if role == "benign" else "unlabelled"
    )
    return TruthClient(
        role=str(role),
        kind=kind,
        model_id=_optional_text(entry, "model_id", f"clients.{cid}"),
        campaign=_optional_text(entry, "campaign", f"clients.{cid}"),
    )


def _curve(value: Any, where: str) -> list[list[float]]:
    if value is None:
        return []
    try:
        curve = [[float(q), float(f)] for q, f in value]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"truth: {where} must be a list of [queries, fidelity] pairs") from exc
    return sorted(curve)


def _attacker(name: str, entry: Any, clients: Mapping[str, TruthClient]) -> TruthAttacker:
    if not isinstance(entry, Mapping):
        raise ValueError(f"truth: attackers.{name} must be an object")
    where = f"attackers.{name}"
    members_raw = entry.get("members", [name])
    if not isinstance(members_raw, list) or not members_raw:
        raise ValueError(f"truth: {where}.members must be a non-empty list of client ids")
    members = [_text(m, f"{where}.members") for m in members_raw]
    first = clients.get(members[0])
    family = _optional_text(entry, "family", where) or (first.kind if first else "unlabelled")
    queries = entry.get("queries")
    final = entry.get("final_fidelity")
    curve = _curve(entry.get("fidelity_curve"), f"{where}.fidelity_curve")
    if final is None and curve:
        final = curve[-1][1]
    return TruthAttacker(
        name=name,
        family=family,
        members=members,
        model_id=_optional_text(entry, "model_id", where),
        queries=None if queries is None else int(queries),
        fidelity_curve=curve,
        final_fidelity=None if final is None else float(final),
    )


@dataclass
class Truth:
    """Clients by id and attackers in file order (then the implied ones, in client order)."""

    clients: dict[str, TruthClient]
    attackers: list[TruthAttacker]

    @classmethod
    def parse(cls, doc: Any) -> Truth:
        """Check and complete a decoded truth document; a clear ``ValueError`` if it is wrong."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("clients"), Mapping):
            raise ValueError("truth: expected an object with a 'clients' object")
        clients = {str(cid): _client(str(cid), e) for cid, e in doc["clients"].items()}
        attackers_doc = doc.get("attackers") or {}
        if not isinstance(attackers_doc, Mapping):
            raise ValueError("truth: 'attackers' must be an object")
        attackers = [_attacker(str(n), e, clients) for n, e in attackers_doc.items()]
        covered = {m for a in attackers for m in a.members}
        implied: dict[str, TruthAttacker] = {}
        for cid, c in clients.items():
            if c.role != "attacker" or cid in covered:
                continue
            name = c.campaign or cid
            if name in implied:
                implied[name].members.append(cid)
            else:
                family = "campaign" if c.campaign else c.kind
                implied[name] = TruthAttacker(name, family, [cid], c.model_id)
        return cls(clients, attackers + list(implied.values()))
