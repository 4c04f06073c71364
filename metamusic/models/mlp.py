"""A plain ReLU MLP: the model of Finn et al.'s sinusoid regression check (2 x 40)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn


class MLP(nn.Module):
    hidden: Sequence[int] = (40, 40)
    out: int = 1

    @nn.compact
    def __call__(self, x):
        for i, h in enumerate(self.hidden):
            x = nn.relu(nn.Dense(h, name=f"dense_{i}")(x))
        return nn.Dense(self.out, name="head")(x)
