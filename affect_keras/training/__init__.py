"""Class weights, optimisers and schedules, callbacks, and the two-phase fit."""
