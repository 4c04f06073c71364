"""Flax linen models, used only through `model.apply(params, ...)`. Imports nothing else from metamusic."""

from metamusic.models.melody_lm import LSTMLM, TransformerLM, lm_loss, make_model

__all__ = ["LSTMLM", "TransformerLM", "lm_loss", "make_model"]
