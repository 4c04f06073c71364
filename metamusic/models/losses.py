"""The one masked NLL and masked mean that every model's loss uses (melody LMs, the GAN's likelihood term)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def token_nll(logits, targets):
    """Per-position NLL (nats, float32) of int `targets` under `logits` [..., V]."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    return -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def masked_mean(x, mask):
    """Mean of `x` where `mask` is 1 (0 when the mask is empty)."""
    return (x * mask).sum() / jnp.maximum(mask.sum(), 1.0)
