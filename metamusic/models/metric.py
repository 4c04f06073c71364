"""The bar-position input channel every melody model and encoder can add to its token embeddings.

Positions come from the data (`metamusic.data.melody`: 0 on the downbeat, counting
time steps within the bar, `positions - 1` meaning none, e.g. under BOS or padding).
A learned embedding per position tells a model where in the bar it is (jig vs slip
jig, reel vs hornpipe differ mostly there); a shared "bar start" vector adds the one
fact that means the same in every meter: this step is a downbeat.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


def add_bar_position(x, pos, positions: int, dim: int):
    """x [..., T, dim] + embeddings of the int positions [..., T]. Call inside a compact method: the
    submodule "bar_pos" and the parameter "bar_start" belong to the calling model."""
    pos = jnp.clip(pos, 0, positions - 1)
    start = (pos == 0).astype(x.dtype)[..., None]
    bar_start = nn.Embed(1, dim, name="bar_start")(jnp.zeros((1,), jnp.int32))[0]
    return x + nn.Embed(positions, dim, name="bar_pos")(pos) + start * bar_start
