"""The one optimizer construction every family's methods use."""

from __future__ import annotations

import optax


def make_optimizer(lr: float, *, clip: float = 0.0, b1: float = 0.9, schedule: str = "constant",
                   steps: int = 1) -> optax.GradientTransformation:
    """The one optimizer construction: Adam, optionally after global-norm clipping, with a constant
    or cosine (to 5% of `lr`) schedule."""
    if schedule == "cosine":
        lr = optax.cosine_decay_schedule(lr, steps, alpha=0.05)
    adam = optax.adam(lr, b1=b1)
    return optax.chain(optax.clip_by_global_norm(clip), adam) if clip else adam
