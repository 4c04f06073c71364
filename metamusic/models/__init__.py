"""Flax linen models, used only through `model.apply(params, ...)`. Imports nothing else from metamusic
but `metamusic.errors` (a leaf module: the one exception type for bad user input).

Registries (read by config validation and the conformance tests):
  MODELS    melody language models: tokens [..., T] -> next-token logits
  ENCODERS  sequence encoders for style classification: (tokens, mask) -> features
"""

from metamusic.models.encoders import ENCODERS
from metamusic.models.incontext import InContextLM  # (registers model.name="incontext")
from metamusic.models.melody_lm import (LSTM_IMPLS, LSTMLM, MODELS, TransformerLM, lm_loss, make_model,
                                        register_model)

__all__ = ["ENCODERS", "InContextLM", "LSTM_IMPLS", "LSTMLM", "MODELS", "TransformerLM", "lm_loss", "make_model", "register_model"]
