"""Parameter masks the algorithms' hooks read (`meta.registry.Hooks`): which leaves an inner loop adapts, found
by the name of the submodule that holds them."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def head_mask(params):
    """1.0 on parameters under a submodule named `head` (what ANIL adapts), 0.0 elsewhere."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.float32(any(getattr(k, "key", None) == "head" for k in path)), params)


def context_mask(params):
    """1.0 on the context vector (a submodule named `context`, what CAVIA adapts), 0.0 elsewhere."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.float32(any(getattr(k, "key", None) == "context" for k in path)), params)
