"""Style scoring with a trained few-shot classifier (relation or prototypical network).

`StyleScorer` scores query melodies against a few example tunes per style;
`style_fidelity` is the fraction of generated tunes it assigns to the target style
when the target competes with distractor styles. The MAML and GAN evaluations use
it as "does the generated music sound like the style it adapted to".
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from metamusic.data.episodes import Episodes
from metamusic.experiments import base, classify, run_config


class StyleScorer:
    """A trained metric learner from a run_relation.py workdir (its config.json and checkpoints)."""

    def __init__(self, workdir: str, enc=None, method: str | None = None):
        self.cfg = run_config(workdir, "classify")
        self.exp = classify.build(self.cfg, None)  # scoring needs the encoding only, not the corpus
        self.method = method or self.exp.algorithms[0]
        self.params = base.restore(self.exp, workdir, self.method)["params"]
        self.length = self.cfg.data.length
        self.enc = enc if enc is not None else self.exp.enc

    def scores(self, support: list, query) -> np.ndarray:
        """support: one (tokens [K_i, T], mask) pair per style; query: (tokens [M, T], mask) -> [M, N].

        Relation scores in [0, 1], or softmax probabilities for a prototypical net.
        """
        tok = np.concatenate([s[0] for s in support])
        mask = np.concatenate([s[1] for s in support])
        labels = np.concatenate([np.full(len(s[0]), i, np.int32) for i, s in enumerate(support)])
        q_tok, q_mask = query[:2]
        # (the classifiers do not read the bar-position channel yet: its fields stay empty)
        ep = Episodes(jnp.asarray(tok), jnp.asarray(mask), jnp.asarray(labels), jnp.asarray(q_tok),
                      jnp.asarray(q_mask), jnp.zeros(len(q_tok), jnp.int32), jnp.arange(len(support)), None, None)
        return np.asarray(self.exp.parts["probabilities"](self.method, self.params, ep, len(support)))


def style_fidelity(scorer: StyleScorer, generated, target, distractors: list) -> float:
    """Fraction of generated windows scored highest for `target` among target + distractors."""
    sc = scorer.scores([target] + list(distractors), generated)
    return float((sc.argmax(-1) == 0).mean())
