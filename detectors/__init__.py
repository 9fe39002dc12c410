"""Pure detection: extraction signals, the per-model baseline and the engine. No I/O."""
