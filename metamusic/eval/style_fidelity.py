"""Style scoring with a trained relation (or prototypical) network.

`StyleScorer` scores query melodies against a few example tunes per style;
`style_fidelity` is the fraction of generated tunes it assigns to the target style
when the target competes with distractor styles. The MAML and GAN evaluations use
it as "does the generated music sound like the style it adapted to".
"""

from __future__ import annotations

import glob
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from metamusic.data import formats, melody
from metamusic.data.episodes import Episodes
from metamusic.errors import MetamusicError
from metamusic.meta import episodic
from metamusic.train import relation as rel


def windows(tunes: list, length: int, pad: int):
    """A list of token arrays -> (tokens [n, T] int32, mask [n, T]) from each tune's start."""
    tok = np.full((len(tunes), length), pad, np.int32)
    mask = np.zeros((len(tunes), length), np.float32)
    for i, t in enumerate(tunes):
        t = np.asarray(t)[:length]
        tok[i, : len(t)], mask[i, : len(t)] = t, 1.0
    return tok, mask


def read_tunes(paths, enc) -> tuple[list, list, list]:
    """Token arrays of every readable tune in `paths` (files or folders), their names, and skip reasons."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(f for f in glob.glob(os.path.join(p, "**", "*"), recursive=True)
                            if os.path.splitext(f)[1].lower() in formats.SUPPORTED_EXTS)
        else:
            files.append(p)
    tunes, names, skipped = [], [], []
    for f in files:
        for rec in formats.read_file(f):
            if isinstance(rec, formats.Skip):
                skipped.append(f"{rec.path}: {rec.reason}")
                continue
            try:
                tunes.append(melody.events_to_tokens(melody.extract_events(rec.sequence, enc), enc))
                idx = rec.meta.get("index")
                names.append(f if idx is None else f"{f} X:{idx}")
            except melody.MelodyError as e:
                skipped.append(f"{f}: {e}")
    return tunes, names, skipped


class StyleScorer:
    """A trained metric learner from a run_relation.py workdir."""

    def __init__(self, workdir: str, corpus=None, method: str | None = None):
        path = os.path.join(workdir, "config.json")
        if not os.path.exists(path):
            raise MetamusicError(f"{workdir} has no config.json; train with run_relation.py first")
        self.cfg = ml_collections.ConfigDict(json.load(open(path)))
        self.cfg.progress = False
        self.setup = rel.setup(self.cfg, corpus, need_corpus=False)  # scoring needs the encoding only
        self.method = method or rel.methods(self.cfg)[0]
        from metamusic.eval.classify import load_params

        self.params = load_params(self.cfg, self.setup, workdir, self.method)
        self.length = self.cfg.data.length
        self.enc = rel.encoding(self.cfg) if corpus is None else corpus.enc

    def scores(self, support: list, query) -> np.ndarray:
        """support: one (tokens [K_i, T], mask) pair per style; query: (tokens [M, T], mask) -> [M, N].

        Relation scores in [0, 1], or softmax probabilities for a prototypical net.
        """
        tok = np.concatenate([s[0] for s in support])
        mask = np.concatenate([s[1] for s in support])
        labels = np.concatenate([np.full(len(s[0]), i, np.int32) for i, s in enumerate(support)])
        q_tok, q_mask = query
        ep = Episodes(jnp.asarray(tok), jnp.asarray(mask), jnp.asarray(labels), jnp.asarray(q_tok),
                      jnp.asarray(q_mask), jnp.zeros(len(q_tok), jnp.int32), jnp.arange(len(support)))
        n = len(support)
        s = self.setup
        if self.method == "relation":
            out = episodic.relation_scores(s.embed, s.relate, self.params, ep, n, self.cfg.relation.aggregate)
        else:
            out = jax.nn.softmax(episodic.proto_logits(s.embed, self.params, ep, n))
        return np.asarray(out)


def style_fidelity(scorer: StyleScorer, generated, target, distractors: list) -> float:
    """Fraction of generated windows scored highest for `target` among target + distractors."""
    sc = scorer.scores([target] + list(distractors), generated)
    return float((sc.argmax(-1) == 0).mean())
