"""Engine configuration: every threshold in one frozen, documented place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Thresholds and sizes of the detection engine.

    The defaults are starting values to tune, documented in the README; the
    signals are calibrated against each model's observed population, so the
    numbers here are in units of evidence (nats), not raw feature units.
    """

    seed: int = 0
    # Per-client bounds.
    ring_size: int = 64  # recent projected inputs kept per (client, model)
    step_window: int = 32  # how many recent inputs steps compare a new one with
    self_window: int = 64  # how many the self-similarity test compares it with (<= ring_size)
    step_min_recent: int = 8  # distinct recent inputs needed before steps are scored
    coverage_bits: int = 8  # LSH cells: 2**bits
    class_buckets: int = 32  # labels are hashed into this many buckets
    max_models_per_client: int = 8
    max_clients: int = 500_000  # in-process LRU cap on tracked clients
    # Models (detectors/support.py): at most this many baselines (about 130 KB each); beyond
    # it a new id evicts a lone model, or is scored in the overflow model when none is lone.
    max_models: int = 2048
    lone_model_clients: int = 4  # a model fewer distinct clients use is "lone"
    # Fan-out (detectors/fanout.py): lone models a client queries, against the population.
    fanout_min_lone: int = 2  # lone models a client must keep before the test scores
    fanout_after_s: float = 600.0  # a model counts as lone only this long after it appeared
    fanout_min_rate: float = 0.05  # floor of the population's lone models per client
    # Suspicious-query count (detectors/tail_count.py): a Bernoulli CUSUM per (client, model)
    # of queries whose tail evidence reaches tail_threshold, against the model's own rate.
    tail_threshold: float = 4.0  # nats: -log of the per-look tail probability (1.8 %)
    tail_ratio: float = 2.5  # the alternative rate, as a multiple of the benign one...
    tail_ratio_fast: float = 8.0  # ...and a quicker one for lightly padded attacks
    tail_prior: float = 64.0  # prior queries behind the benign rate (at the nominal rate)
    # Malformed inputs (detectors/malformed.py): wrong dimension or outside the domain.
    malformed_prior: float = 256.0  # prior queries behind the model's benign rate of them
    cap_malformed: float = 12.0  # a client's malformed queries alone stay below "high"
    # Population (per model).
    projection_dim: int = 32
    reference_size: int = 512
    sketch_size: int = 2048
    warmup_events: int = 128
    warmup_min_clients: int = 4
    warmup_per_client: int = 32
    epoch_events: int = 32  # learned population updates are applied in epochs
    min_sketch: int = 64  # values a sketch needs before its signal scores
    learn_below_risk: float = 20.0  # clients at or above this risk never teach the baseline
    # Evidence accumulation.
    # Two CUSUMs per per-event signal: a fast one for large shifts, a slow one for
    # persistent moderate ones. Per-event evidence of benign traffic is ~Exp(1), mean 1.
    cusum_drift: float = 3.0  # nats subtracted per event by the fast CUSUM
    cusum_rate: float = 0.9  # its benign tail rate: P(S > s) ~ exp(-rate * s)
    slow_drift: float = 1.9  # nats subtracted per event by the slow CUSUM
    slow_rate: float = 0.76  # its benign tail rate
    cap_signal: float = 32.0  # one signal alone reaches at most "high"
    cap_volume: float = 1.5  # volume alone never reaches "low" (20)
    cap_count: float = 40.0  # the suspicious-query count alone may reach "high", not critical
    self_min_reference: int = 8  # other clients' same-class inputs a self-similarity test needs
    self_contrast: float = 0.9  # own inputs count when nearer than this share of the nearest other
    client_test_every: int = 8  # client-level tests are recomputed every N queries
    min_client_test: int = 24  # queries before a client-level test counts
    # Alerting and risk emission.
    min_queries_to_alert: int = 5
    hysteresis: float = 10.0  # an episode ends when risk stays this far below "low"...
    quiet_queries: int = 100  # ...for this many consecutive queries
    risk_every_n: int = 100
    risk_every_seconds: float = 300.0

    # Campaigns (detectors/campaign.py): accounts reaching "moderate" on one model, pooled.
    campaign_window_s: float = 3600.0  # accounts count together this long after reaching it
    campaign_prior_accounts: float = 1.0  # prior rate of such accounts outside campaigns:
    campaign_prior_seconds: float = 21_600.0  # ...this many per this many seconds (weak)
    campaign_max_members: int = 256  # accounts kept per window and per campaign
    campaign_max_queries: int = 128  # an account counts if it qualifies within this many queries
    campaigns: bool = True  # False: accounts are scored alone
    # Identity pools (detectors/identity.py): the young keys of one network (IPv4 /24, IPv6
    # /64) or TLS fingerprint, scored together as one client once several are seen.
    pool_young_queries: int = 32  # a key feeds its pools for its first queries to a model
    pool_min_keys: int = 3  # distinct young keys within the window that make a pool active
    pool_window_s: float = 3600.0  # a key counts in its pool this long after its last query
    pool_max_members: int = 256  # keys kept per pool (the longest quiet go first)
    pool_name_surprise: float = 6.0  # nats: a pool alert names keys whose suspicious queries
    # are this unlikely for a benign key (an honest neighbour behind the same NAT is not named)
    max_pools: int = 16_384  # pools kept (the least risky of the oldest go first)
    pools: bool = True  # False: keys are scored alone

    # Extra signals (detectors/extras.py): River anomaly detectors, each as
    # ("river.<module>.<Class>", {parameters}); a list from JSON or TOML is accepted as it is.
    extra_detectors: Sequence[object] = ()

    def __reduce__(self) -> tuple[type[EngineConfig], tuple[object, ...]]:
        """Pickle by field values (the compiled, frozen class cannot be filled in after)."""
        return type(self), tuple(getattr(self, f.name) for f in fields(self))

    def __post_init__(self) -> None:
        if not 1 <= self.class_buckets <= 255:
            raise ValueError("class_buckets must be 1-255 (a bucket is kept in one byte)")
        if self.max_models < 1 or self.lone_model_clients < 1:
            raise ValueError("max_models and lone_model_clients must be at least 1")
        if not (self.tail_ratio > 1.0 and self.tail_ratio_fast > 1.0):
            raise ValueError("tail_ratio must exceed 1 (the alternative rate is a multiple)")
        if self.pool_min_keys < 2 or self.pool_max_members < self.pool_min_keys:
            raise ValueError("pool_min_keys must be at least 2 and at most pool_max_members")
        if not 0.0 < self.self_contrast <= 1.0:
            raise ValueError("self_contrast must be in (0, 1] (1: any nearer own input counts)")
