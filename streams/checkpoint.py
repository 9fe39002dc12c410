"""Population checkpoints written ahead of the table: the baseline survives a crash anywhere.

The score stage writes, in any batch that changed the per-model baseline and *before* the
batch's table writes, one checkpoint: the baseline after the batch (``export_population``),
the batch's new table values and the by-client offsets the checkpoint covers. A crash can
then leave the table behind the checkpoint (some table writes of the batch lost) but never
ahead of it, and a restarted worker puts the checkpoint's table values in an
:class:`Overlay` that the stage reads through: a client whose table write was lost reads
the value the checkpoint carries, so every client and the baseline are at the same point
(the events the checkpoint covers are skipped, the others scored against the baseline they
saw the first time). Batches that did not change the baseline write no checkpoint: if some
of their table writes are lost, their events are scored again against the same baseline.

A checkpoint can be larger than one Kafka message: it is cut into parts (keys
``<app_id>/<worker_id>\\x00<parity>/<i>``, alternating between two parities so that the
previous checkpoint stays whole while the next is written) and a head record under
``<app_id>/<worker_id>`` written last, naming the sequence number and the parts. Everything
goes to one partition, so a head delivered means its parts were. A plain population blob
under the worker's key (the format before) still loads.

Pure Python over bytes: no Faust, no Kafka client.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from streams.scoring import unpack_state

MAGIC = b"CWPC1\n"
_LEN = struct.Struct(">I")
_PART_SEP = b"\x00"
Record = tuple[bytes, bytes]  # (key, value) on the population topic


@dataclass
class Checkpoint:
    """What one checkpoint holds: the baseline and the table values of its batch."""

    seq: int
    population: bytes
    states: dict[bytes, bytes] = field(default_factory=dict)
    covers: dict[str, int] = field(default_factory=dict)  # "topic/partition" -> next offset


def _body(cp: Checkpoint) -> bytes:
    parts = [_LEN.pack(len(cp.population)), cp.population, _LEN.pack(len(cp.states))]
    for key, value in sorted(cp.states.items()):
        parts += [_LEN.pack(len(key)), key, _LEN.pack(len(value)), value]
    return b"".join(parts)


def _unbody(blob: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    raw = blob
    at = 0

    def take() -> bytes:
        nonlocal at
        (n,) = _LEN.unpack_from(raw, at)
        at += _LEN.size
        out = raw[at : at + n]
        if len(out) != n:
            raise ValueError("truncated checkpoint")
        at += n
        return out

    population = take()
    (count,) = _LEN.unpack_from(raw, at)
    at += _LEN.size
    states = {}
    for _ in range(count):
        key = take()
        states[key] = take()
    return population, states


def part_key(head: bytes, parity: int, index: int) -> bytes:
    r"""The key of one part of a checkpoint.

    >>> part_key(b"app/w1", 1, 3)
    b'app/w1\x001/3'
    """
    return head + _PART_SEP + f"{parity}/{index}".encode()


def encode(cp: Checkpoint, head: bytes, max_bytes: int) -> list[Record]:
    r"""The records of one checkpoint, parts first and the head last.

    >>> recs = encode(Checkpoint(4, b"{}", {b"c": b"v"}), b"app/w1", 1024)
    >>> [k for k, _ in recs]
    [b'app/w1\x000/0', b'app/w1']
    >>> decode(dict(recs), b"app/w1").states
    {b'c': b'v'}
    """
    body = _body(cp)
    size = max(1024, max_bytes - 4096)  # room for the key and the record's overhead
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    parity = cp.seq % 2
    records = [(part_key(head, parity, i), c) for i, c in enumerate(chunks)]
    meta: dict[str, object] = {"seq": cp.seq, "parity": parity, "parts": len(chunks)}
    meta.update(bytes=len(body), covers=cp.covers)
    records.append((head, MAGIC + json.dumps(meta, sort_keys=True).encode()))
    return records


def decode(latest: Mapping[bytes, bytes], head: bytes) -> Checkpoint:
    """The checkpoint under ``head`` from the latest value of each key of the topic.

    A head that is not a checkpoint is a plain population blob (the format before).
    Raises ``KeyError`` if there is no head, ``ValueError`` if the parts do not match it.
    """
    value = latest[head]
    if not value.startswith(MAGIC):
        return Checkpoint(seq=0, population=value)
    meta = json.loads(value[len(MAGIC) :])
    chunks = [latest.get(part_key(head, meta["parity"], i)) for i in range(meta["parts"])]
    if any(c is None for c in chunks):
        raise ValueError(f"checkpoint {meta['seq']} of {head!r} misses parts")
    body = b"".join(c for c in chunks if c is not None)
    if len(body) != meta["bytes"]:
        raise ValueError(f"checkpoint {meta['seq']} of {head!r} has parts of another one")
    population, states = _unbody(body)
    return Checkpoint(meta["seq"], population, states, dict(meta.get("covers", {})))


def is_head(key: bytes) -> bool:
    r"""Whether a key of the population topic is a checkpoint's head (not one of its parts).

    >>> is_head(b"app/w1"), is_head(b"app/w1\x000/0")
    (True, False)
    """
    return _PART_SEP not in key


def newer(table_value: bytes | None, carried: bytes) -> bool:
    """Whether a value a checkpoint carries is ahead of the table's for the same client.

    It is when the table has none, or when the checkpoint's value has folded in events
    (per input partition, the offset of the last one) that the table's has not.

    >>> from streams.scoring import pack_state
    >>> five = pack_state({0: 5}, b"")
    >>> newer(None, five), newer(five, five)
    (True, False)
    >>> newer(pack_state({0: 4}, b""), pack_state({0: 5}, b""))
    True
    """
    if table_value is None:
        return True
    mine, _ = unpack_state(carried)
    theirs, _ = unpack_state(table_value)
    return any(o > theirs.get(p, -1) for p, o in mine.items())


class Overlay:
    """The table values of the checkpoint a worker restarted from, until each is rewritten."""

    def __init__(self, states: Mapping[bytes, bytes] | None = None) -> None:
        self.states: dict[bytes, bytes] = dict(states or {})
        self.used = 0  # values taken because the table's write had been lost

    def reader(self, lookup: Callable[[bytes], bytes | None]) -> Callable[[bytes], bytes | None]:
        """``lookup`` with this overlay's value where it is ahead of the table's."""
        if not self.states:
            return lookup

        def read(key: bytes) -> bytes | None:
            value = lookup(key)
            carried = self.states.get(key)
            if carried is not None and newer(value, carried):
                self.used += 1
                return carried
            return value

        return read

    def written(self, keys: Iterable[bytes]) -> None:
        """The table now holds these keys' newest values: forget ours."""
        if self.states:
            for key in keys:
                self.states.pop(key, None)
