"""Style scoring with a trained few-shot classifier (the best of a run_relation.py run on meta-val).

`StyleScorer` scores query melodies against a few example tunes per style;
`style_fidelity` is the fraction of generated tunes it assigns to the target style
when the target competes with distractor styles. The MAML and GAN evaluations use
it as "does the generated music sound like the style it adapted to".
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from metamusic.data.episodes import Episodes
from metamusic.data.melody import NO_POS
from metamusic.experiments import base, classify, run_config


class StyleScorer:
    """A trained classifier from a run_relation.py workdir (its config.json and checkpoints).

    method: a learned row of the classification evaluation (a method, or e.g. "pretrain+cosine");
    by default the one its evaluation chose on meta-val (workdir/scorer.json), else the first method.
    """

    def __init__(self, workdir: str, enc=None, method: str | None = None):
        import json
        import os

        from metamusic.eval.classify import SCORER_FILE, method_of

        self.cfg = run_config(workdir, "classify")
        self.exp = classify.build(self.cfg, None)  # scoring needs the encoding only, not the corpus
        chosen = os.path.join(workdir, SCORER_FILE)
        choice = json.load(open(chosen)) if os.path.exists(chosen) else {}
        self.method = method or choice.get("row") or self.exp.algorithms[0]
        # its accuracy on the evaluation's meta-val episodes (0 where the run was not evaluated)
        self.val_accuracy = choice.get("val_accuracy", {}).get(self.method, 0.0)
        self.params = base.restore(self.exp, workdir, method_of(self.exp, self.method))["params"]
        self.length = self.cfg.data.length
        self.enc = enc if enc is not None else self.exp.enc
        self._compiled = {}  # ways -> jit of the chosen row's probabilities

    def scores(self, support: list, query) -> np.ndarray:
        """support: one (tokens [K_i, T], mask[, bar positions]) tuple per style; query: the same for
        [M, T] -> [M, N]. Relation scores in [0, 1], or softmax probabilities of a head's logits.

        Windows longer than the scorer's data.length are cut to it; shorter ones are padded; a support window with
        no real token (the padding after a short tune given as whole-tune windows) is left out. Queries
        without bar positions (generated melodies) are scored with none on either side (NO_POS), so
        the support's meter cannot favour real tunes over samples.
        """
        ep, ways = self.episode(support, query), len(support)
        if ways not in self._compiled:  # one compiled call per episode shape, not every op compiled per shape
            import jax

            self._compiled[ways] = jax.jit(lambda p, e: self.exp.parts.probabilities(self.method, p, e, ways))
        return np.asarray(self._compiled[ways](self.params, ep))

    def episode(self, support: list, query) -> Episodes:
        """The one episode `scores` classifies (arguments as there)."""
        def fit(t):
            tok, mask = np.asarray(t[0]), np.asarray(t[1], np.float32)
            pos = np.asarray(t[2]) if len(t) > 2 and t[2] is not None else np.full(tok.shape, NO_POS, np.int32)
            L, T = self.length, tok.shape[-1]
            if T >= L:
                return tok[:, :L], mask[:, :L], pos[:, :L]
            padw = ((0, 0), (0, L - T))
            return (np.pad(tok, padw, constant_values=self.enc.pad), np.pad(mask, padw),
                    np.pad(pos, padw, constant_values=NO_POS))

        if len(query) < 3 or query[2] is None:  # no positions for the queries: none for the support either
            support = [s[:2] for s in support]
        # a whole tune as W windows leaves windows of padding where it is short: they hold nothing of the style,
        # and kept they would pull a style of short tunes towards the embedding of an empty window
        support = [tuple(np.asarray(x)[np.asarray(s[1]).sum(-1) > 0] for x in s) if np.asarray(s[1]).sum() > 0 else s
                   for s in support]
        sup = [fit(s) for s in support]
        tok, mask, pos = (np.concatenate([s[i] for s in sup]) for i in range(3))
        labels = np.concatenate([np.full(len(s[0]), i, np.int32) for i, s in enumerate(sup)])
        q_tok, q_mask, q_pos = fit(query)
        return Episodes(jnp.asarray(tok), jnp.asarray(mask), jnp.asarray(labels), jnp.asarray(q_tok),
                        jnp.asarray(q_mask), jnp.zeros(len(q_tok), jnp.int32), jnp.arange(len(sup)),
                        jnp.asarray(pos), jnp.asarray(q_pos))


def style_fidelity(scorer: StyleScorer, generated, target, distractors: list) -> float:
    """Fraction of generated windows scored highest for `target` among target + distractors."""
    sc = scorer.scores([target] + list(distractors), generated)
    return float((sc.argmax(-1) == 0).mean())


def score_files(workdir: str, support: str, query) -> tuple[list, list, dict, str]:
    """Scores query tunes against a few example files per style with the classification run in `workdir`:
    (styles, [(query tune name, probability per style)], {"query": skip reasons, "support": skip reasons}, the
    row that scored them). support: a folder with one subfolder of example files per style; query: files or
    folders. Unreadable files and tunes are skipped with their reason, counted on their side.

    The row is the best on meta-val among every row that reads real tunes: the feature regression the
    run's evaluation chose (`eval.json` features_l2, fitted on the support tunes), when it beats the
    style scorer's row there; otherwise, or before the run is evaluated, the style scorer's row. Tunes are read up
    to the tokens the run's evaluation read (its eval.json), else data.length."""
    import json
    import os

    from metamusic.data.corpus import folder_sources
    from metamusic.data.files import music_files, read_tunes, windows
    from metamusic.data.formats import SUPPORTED_EXTS
    from metamusic.errors import MetamusicError
    from metamusic.eval.classify import predicting_row, regression_probabilities

    if not os.path.isdir(support):
        raise MetamusicError(f"--support={support}: no such folder (it needs one subfolder of example files per style)")
    scorer = StyleScorer(workdir)
    evaluated = os.path.join(workdir, "eval.json")
    evaluation = json.load(open(evaluated)) if os.path.exists(evaluated) else {}
    # tunes read as the run's evaluation read them (eval.length: whole tunes), where its meta-val choices were made
    scorer.length = evaluation.get("config", {}).get("length", scorer.length)
    # the queries first: a folder without music is named before the support's work
    wanted = music_files(list(query))
    if not wanted:
        raise MetamusicError(f"--query={', '.join(query)}: no music files ({', '.join(SUPPORTED_EXTS)})")
    tunes, positions, names, skipped = read_tunes(wanted, scorer.enc)
    skips = {"query": skipped, "support": []}
    if not tunes:
        raise MetamusicError(f"--query={', '.join(query)}: no readable tunes in {len(wanted)} music file(s); "
                             f"skipped: {skipped[:3]}")
    q = windows(tunes, scorer.length, scorer.enc.pad, positions)
    # the styles as a corpus folder reads them (`folder_sources`): hidden folders and style folders that link to
    # another style or the root are left out and named, links into another style's folder are not followed
    sources = [src for src in folder_sources(support) if not src.left_out]
    styles = [src.name.split("/", 1)[1] for src in sources]
    if len(styles) < 2:
        raise MetamusicError(f"--support={support} needs at least 2 style subfolders, found {len(styles)}")
    sup, kept = [], []
    for st, src in zip(styles, sources):
        tunes, positions, _, skipped = read_tunes(list(src.files), scorer.enc)
        skips["support"] += skipped
        if not tunes:  # a style with nothing to learn from is left out and named, as a corpus folder's is
            skips["support"].append(f"{os.path.join(support, st)}: style left out, no readable tunes "
                                    f"({len(src.files)} music file(s))")
            continue
        kept.append(st)
        sup.append(windows(tunes, scorer.length, scorer.enc.pad, positions))
    if len(kept) < 2:
        raise MetamusicError(f"--support={support} needs at least 2 styles with readable tunes, found {len(kept)}"
                             f" ({', '.join(kept) or 'none'}); skipped: {skips['support'][:3]}")
    styles = kept
    row, l2 = predicting_row(evaluation.get("features_l2", {}), scorer.method, scorer.val_accuracy)
    if l2 is None:
        return styles, list(zip(names, scorer.scores(sup, q))), skips, row
    ep = scorer.episode(sup, q)
    params = {m: base.restore(scorer.exp, workdir, m)["params"] for m in scorer.exp.algorithms}
    batch = type(ep)(*(np.asarray(x)[None] for x in ep))
    probs = regression_probabilities(scorer.exp, params, row, l2, batch, len(styles))[0]
    return styles, list(zip(names, probs)), skips, row
