"""Distance structure between a client's successive queries."""

from __future__ import annotations

import math
from typing import ClassVar, Final

from detectors.base import (
    ConfiguredSignal,
    Observation,
    Reading,
    bernoulli_cusum,
    cusum_surprise,
    ewma,
)
from detectors.population import ModelPopulation
from detectors.sketch import MAX_TAIL_EVIDENCE
from detectors.state import ModelClientState

TAIL: Final = 0.1  # a step is "small" when it is in the lower 10 % of benign clients' steps
PROBING: Final = 0.7  # the rate of small steps the alternative hypothesis expects
LOOKS: Final = math.log(3.0)  # chain, line and self-similarity: the price of taking the best
HIT: Final = -math.log(TAIL)  # the lower-tail evidence of a step at the TAIL quantile


class StepSignal(ConfiguredSignal):
    """Small systematic steps and line searches between a client's own queries.

    Three scale-free views of each query against the client's last distinct
    inputs (computed for a whole micro-batch in :mod:`detectors.batch`):

    * the nearest step divided by the median distance to those inputs. A step
      in the lower 10 % of benign clients' ratios is a *hit*; a Bernoulli
      CUSUM tests whether hits come persistently more often than 10 %. Bounded
      increments make it robust: a natural client that now and then re-submits
      a near-identical input (one user's similar photos, a class-skewed tool)
      does not build evidence, while JbDA augmentation and gradient-estimating
      pairs, whose every step is small, do. A small step only counts as a hit
      when it is shorter than the distance to the nearest other client's input:
      a client asking about one dense region (a class-skewed tool, a scan sorted
      by one feature) takes small steps among natural inputs.
    * the collinearity ``|cos|`` of the last two steps (upper tail, CUSUM):
      Tramèr path finding and cryptanalytic line searches walk straight lines.
    * self-similarity, class by class (PRADA's insight, with bounded state): how
      many of the client's own recent inputs of the query's class are nearer
      than every other client's input of that class, as a surprise against
      exchangeable traffic (:meth:`Observation.self_surprise`); an own input
      counts when it is nearer than ``self_contrast`` (0.9) of the nearest other's
      distance, as in high dimension a client keeping to one topic of a class is
      slightly nearer to itself than to the class's others. It needs no
      per-window calibration, so it works from a model's first hour, and a
      class-skewed client is compared within its class. The surprise is divided
      by the population's own mean (natural self-similarity), capped per query,
      and fades out for clients whose queries mostly continue the one before
      (sensor streams). CUSUM as for collinearity.

    Exact repeats of a recent input are retries, not steps: they add nothing.
    The best of the three looks, less ``log 3``, is the evidence.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.population import ModelPopulation
    >>> from detectors.config import EngineConfig
    >>> cfg = EngineConfig()
    >>> pop = ModelPopulation("m", cfg)
    >>> rng = np.random.default_rng(0)
    >>> pop.step.extend(rng.uniform(0.3, 1.0, 500)); pop.collinear.extend(rng.uniform(0, 0.6, 500))
    >>> sig, st = StepSignal(cfg), ModelClientState()
    >>> obs = Observation(1, 0, step_ratio=0.7, step_count=8, collinearity=0.2)
    >>> natural = [sig.update(obs, st, pop)]
    >>> natural[-1].evidence
    0.0
    >>> obs = Observation(1, 0, step_ratio=0.1, step_count=8, collinearity=0.3)
    >>> chain = [sig.update(obs, st, pop) for _ in range(30)]
    >>> chain[-1].evidence > 20
    True
    >>> sig, st = StepSignal(cfg), ModelClientState()  # 3 of 4 own inputs nearer than 30 others
    >>> obs = Observation(1, 0, own_same=[0.2, 0.3, 0.4, 2.0], other_same=1.0, other_same_count=30)
    >>> round(obs.self_surprise(cfg.self_min_reference, cfg.self_contrast), 2)
    7.31
    >>> family = [sig.update(obs, st, pop) for _ in range(10)]
    >>> family[-1].evidence > 20
    True
    """

    name: ClassVar[str] = "steps"

    def update(self, obs: Observation, state: ModelClientState, pop: ModelPopulation) -> Reading:
        """Fold the step from the client's recent queries to this one into its evidence."""
        cfg = self.config
        surprise = (
            None if obs.retry else obs.self_surprise(cfg.self_min_reference, cfg.self_contrast)
        )
        if obs.retry or (obs.step_ratio is None and obs.collinearity is None and surprise is None):
            return Reading(state.values.get(self.name, 0.0), state.evidence.get(self.name, 0.0))
        chain = state.values.get("chain_steps", 0.0)
        sketch = pop.step_sketch_for(obs.step_count)
        if obs.step_ratio is not None and sketch is not None:
            small = sketch.lower(obs.step_ratio)
            hit = small >= HIT
            # A small step to an input no nearer than other clients' natural ones is how a
            # client asking about one region (class-skewed, one user's photos) moves.
            if hit and obs.step is not None and obs.nearest is not None:
                hit = not obs.step >= obs.nearest
            obs.note_tail(small if hit else 0.0)
            chain = bernoulli_cusum(state, "chain_steps", hit, TAIL, PROBING, 2 * cfg.cap_signal)
            ewma(state, self.name, 1.0 if hit else 0.0)
        if obs.collinearity is not None and pop.collinear.count >= cfg.min_sketch:
            tail = pop.collinear.upper(obs.collinearity)
            obs.note_tail(tail)
            line = cusum_surprise(state, "line_steps", tail, cfg)
            state.values["line_steps"] = line
        if obs.step_count or obs.own_nearest is not None:
            ewma(state, "continuity", 0.0 if obs.own_nearest is None else 1.0, alpha=0.1)
        if surprise is not None:
            # A stream of continuations (sensor readings, video frames) is self-similar by
            # nature: the test fades out as continuations approach half the client's queries.
            fresh = max(0.0, 1.0 - 2.0 * state.values.get("continuity", 0.0))
            e = fresh * min(MAX_TAIL_EVIDENCE, surprise / pop.self_scale())
            obs.note_tail(e)
            near_own = cusum_surprise(state, "near_own", e, cfg)
            state.values["near_own"] = near_own
        best = max(chain, state.values.get("line_steps", 0.0), state.values.get("near_own", 0.0))
        evidence = max(0.0, best - LOOKS)  # the best of three looks
        state.evidence[self.name] = evidence
        return Reading(state.values.get(self.name, 0.0), evidence, lesson=obs.step_ratio)
