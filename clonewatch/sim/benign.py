"""Benign clients: how honest users of each model query it over one day.

Kinds (recorded as ``kind`` in the truth): ``light`` app users, ``heavy``
integrations, nightly ``batch`` jobs, ``retry`` clients repeating identical
queries, ``skewed`` clients asking mostly about one class, and ``noisy`` clients
whose natural inputs carry larger noise. Counts are per the whole log at scale 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from clonewatch.sim.common import DAY_SECONDS, HOUR, rng_for
from clonewatch.sim.victims import MODEL_IDS, Victim, natural_inputs

Floats = NDArray[np.float64]

#: Relative traffic per UTC hour of the day for app users.
DIURNAL = np.array(
    [
        0.3,
        0.25,
        0.2,
        0.2,
        0.2,
        0.3,
        0.5,
        0.8,
        1.1,
        1.3,
        1.4,
        1.4,
        1.3,
        1.4,
        1.4,
        1.3,
        1.3,
        1.2,
        1.2,
        1.1,
        1.0,
        0.8,
        0.6,
        0.4,
    ]
)

#: kind -> (clients at scale 1 over all models, (min, max) queries per client)
BENIGN_KINDS: dict[str, tuple[int, tuple[int, int]]] = {
    "light": (300, (5, 60)),
    "heavy": (8, (2500, 4000)),
    "batch": (4, (2000, 3000)),
    "retry": (45, (25, 60)),
    "skewed": (45, (50, 250)),
    "noisy": (45, (50, 250)),
}

USER_AGENTS = {
    "light": (
        "PixelPal/3.2.1 (iPhone; iOS 17.4)",
        "PixelPal/3.2.0 (Android 14)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0",
    ),
    "heavy": ("acme-integration/1.4 python-requests/2.31.0", "okhttp/4.12.0"),
    "batch": ("nightly-scorer/0.9 (+spark)", "airflow-scoring/2.8"),
    "retry": ("PixelPal/3.1.9 (Android 12) retry/3",),
    "skewed": ("triage-tool/2.0 python-httpx/0.27",),
    "noisy": ("scanner-gateway/1.1 (camera)",),
}


@dataclass
class ClientStream:
    """One client's queries on one model: times (seconds into the day) and inputs."""

    client_id: str
    role: str
    kind: str
    model_id: str
    times: Floats
    x: Floats
    source_ip: str
    user_agent: str
    tenant: str
    campaign: str | None = None
    p: Floats | None = field(default=None)


def diurnal_times(rng: np.random.Generator, n: int) -> Floats:
    """``n`` sorted times over the day following the :data:`DIURNAL` profile."""
    hours = rng.choice(24, size=n, p=DIURNAL / DIURNAL.sum())
    return np.sort(hours * HOUR + rng.uniform(0, HOUR, size=n))


def random_ip(rng: np.random.Generator) -> str:
    """A public-looking IPv4 address."""
    first = int(rng.choice([23, 31, 37, 46, 62, 77, 81, 88, 91, 94, 109, 151, 176, 185, 212]))
    a, b, c = (int(v) for v in rng.integers(1, 255, size=3))
    return f"{first}.{a}.{b}.{c}"


def _count(scale: float, base: int) -> int:
    return max(1, round(base * scale))


def _skewed_inputs(victim: Victim, rng: np.random.Generator, n: int) -> Floats:
    counts = np.bincount(victim.y_pool, minlength=victim.n_classes)
    favourite = int(counts.argmin()) if rng.random() < 0.3 else int(rng.integers(victim.n_classes))
    share = rng.uniform(0.75, 0.92)
    members = np.flatnonzero(victim.y_pool == favourite)
    n_fav = round(n * share)
    idx = np.concatenate(
        [rng.choice(members, size=n_fav), rng.integers(len(victim.y_pool), size=n - n_fav)]
    )
    rng.shuffle(idx)
    return natural_inputs(victim, rng, n, indices=idx)


def benign_clients(victims: dict[str, Victim], seed: int, scale: float) -> list[ClientStream]:
    """Every benign client of the log, without answers (``p`` is filled by the caller)."""
    out: list[ClientStream] = []
    for kind, (base, (lo_n, hi_n)) in BENIGN_KINDS.items():
        for i in range(_count(scale, base)):
            rng = rng_for(seed, "benign", kind, i)
            model_id = MODEL_IDS[i % len(MODEL_IDS)]
            victim = victims[model_id]
            n = int(rng.integers(lo_n, hi_n + 1))
            if kind == "light":
                times = diurnal_times(rng, n)
                x = natural_inputs(victim, rng, n)
            elif kind == "heavy":
                start = rng.uniform(7.5, 9.0) * HOUR
                end = rng.uniform(17.0, 18.5) * HOUR
                times = np.sort(rng.uniform(start, end, size=n))
                x = natural_inputs(victim, rng, n)
            elif kind == "batch":
                start = rng.uniform(0.5, 4.0) * HOUR
                times = start + np.cumsum(rng.exponential(1.0 / rng.uniform(8, 20), size=n))
                x = natural_inputs(victim, rng, n)
            elif kind == "retry":
                base_x = natural_inputs(victim, rng, n)
                base_t = diurnal_times(rng, n)
                reps = rng.integers(1, 5, size=n)
                x = np.repeat(base_x, reps, axis=0)
                offsets = np.concatenate(
                    [np.cumsum(rng.uniform(0.3, 4.0, size=r)) - 0.3 for r in reps]
                )
                times = np.repeat(base_t, reps) + offsets
            elif kind == "skewed":
                times = diurnal_times(rng, n)
                x = _skewed_inputs(victim, rng, n)
            else:  # noisy
                times = diurnal_times(rng, n)
                x = natural_inputs(victim, rng, n, jitter=float(rng.uniform(0.25, 0.30)))
            times = np.clip(times, 0.0, DAY_SECONDS - 1.0)
            tenant = f"{kind}-tenant-{i % 7}" if kind != "light" else "public-app"
            out.append(
                ClientStream(
                    client_id=f"benign-{kind}-{i:04d}",
                    role="benign",
                    kind=kind,
                    model_id=model_id,
                    times=times,
                    x=x,
                    source_ip=random_ip(rng),
                    user_agent=str(rng.choice(USER_AGENTS[kind])),
                    tenant=tenant,
                )
            )
    return out
