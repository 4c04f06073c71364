"""Few-shot generation on meta-test styles: meta-GANs against the melody models and references.

For each K in cfg.eval.shots and each meta-test style (fixed draws): K support
windows from the style's support pool, and `eval.samples` held-out windows from its
query pool (never the same tunes) as the style's target set. Each method adapts on
the support windows (or not) and generates `eval.samples` melodies of the window
length; each generated set is compared with the held-out set:
  * MGEval features, overlap area and KL of intra- vs inter-set distances;
  * validity: empty-bar rate, pitch classes used, in-scale ratio, notes >= 2 steps;
  * style fidelity with a trained relation network (if `eval.scorer` names one).
Methods: each meta-GAN, adapted; the joint GAN as trained and fine-tuned with the
same inner steps; the melody LMs of a run_maml.py workdir (its first meta-learned
algorithm adapted, its joint model unadapted); the K support windows themselves (a
reference ceiling). Results -> DIR/eval.json, eval.md, eval.png.
"""

from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from metamusic import baselines
from metamusic.errors import MetamusicError
from metamusic.eval import music_metrics as mm
from metamusic.eval.draws import style_draws
from metamusic.experiments import base, gan, melody, run_config

SUPPORT = "support tunes (reference)"
HELD_OUT = "held-out tunes (target)"


def gan_methods(exp: base.Experiment, workdir: str) -> tuple[dict, dict]:
    """label -> (support (tok, mask), key, num) -> tokens [num, T], for the trained GANs; and tuning notes.

    Meta-GANs adapt with eval.steps inner steps; the joint GAN as trained, and fine-tuned with the inner
    lrs scaled by the factor chosen on meta-val (`baselines.finetune_choice`)."""
    cfg = exp.cfg
    T = cfg.data.length
    out, notes = {}, {}
    for name in exp.methods:
        algo, meta = exp.algorithm(name), base.restore(exp, workdir, name)
        variants = [(exp.label(name), algo, cfg.eval.steps)]
        if baselines.is_joint(name):
            choice = baselines.finetune_choice(workdir, gan.tuning(exp), meta)
            notes["joint GAN fine-tuning lr scale (chosen on meta-val)"] = choice.candidate
            tuned = baselines.finetune_algorithm(exp.loss_fn, choice.lr, choice.steps, cfg.meta.remat)
            variants = [(exp.label(name), algo, 0), (exp.label(name) + ", fine-tuned", tuned, choice.steps)]
        for label, a, steps in variants:
            adapt = jax.jit(lambda m, sup, k, a=a, n=steps: a.adapt(m, sup, k, steps=n).params["g"])
            out[label] = (lambda sup, key, num, m=meta, f=adapt:
                          exp.parts["sample"](f(m, sup, key), num, T, jax.random.fold_in(key, 1)))
    return out, notes


def melody_methods(cfg, mworkdir: str, corpus) -> tuple[dict, str]:
    """The melody LMs of a run_maml.py workdir, or ({}, reason) when they cannot be compared."""
    if not mworkdir or not os.path.exists(os.path.join(mworkdir, "config.json")):
        return {}, f"no run_maml.py workdir at {mworkdir!r}"
    mcfg = run_config(mworkdir, "melody")
    if base.encoding(mcfg) != corpus.enc:
        return {}, f"{mworkdir} was trained with a different encoding"
    mexp = melody.build(mcfg, corpus)
    T = cfg.data.length
    out = {}
    first = mexp.algorithms[0]
    for name, steps, label in [(first, mcfg.eval.steps, f"melody LM, {first} adapted"),
                               (baselines.JOINT, 0, "melody LM, joint (unadapted)")]:
        algo = mexp.algorithm(name)
        try:
            meta = base.restore(mexp, mworkdir, name)
        except (MetamusicError, ValueError, KeyError) as e:  # a missing or incompatible checkpoint: row left out
            return out, f"{mworkdir}/{name}: {e}"
        adapt = jax.jit(lambda m, sup, k, a=algo, n=steps: a.adapt(m, sup, k, steps=n).params)
        out[label] = (lambda sup, key, num, m=meta, f=adapt:
                      mexp.parts["sample"](f(m, sup, key), sup, num=num, length=T + 1,
                                           temperature=cfg.eval.temperature, key=jax.random.fold_in(key, 1))[:, 1:])
    return out, ""


def _melodies(tok: np.ndarray, valid: np.ndarray, enc) -> tuple[list, list]:
    mels, lens = [], []
    for t, v in zip(tok, valid):
        t = t[v > 0]
        mels.append(mm.notes(t, enc.min_note, enc.num_classes))
        lens.append(len(t))
    return mels, lens


def evaluate(exp: base.Experiment, workdir: str) -> dict:
    cfg, corpus = exp.cfg, exp.corpus
    enc, T, M = corpus.enc, cfg.data.length, cfg.eval.samples
    test = corpus.styles_in("test")
    methods, tuning = gan_methods(exp, workdir)
    extra, note = melody_methods(cfg, cfg.eval.melody_workdir, corpus)
    methods.update(extra)
    scorer, style_fidelity = None, None
    if cfg.eval.scorer and os.path.exists(os.path.join(cfg.eval.scorer, "config.json")):
        from metamusic.eval.style_fidelity import StyleScorer, style_fidelity

        scorer = StyleScorer(cfg.eval.scorer, corpus.enc)
    elif cfg.eval.scorer:
        note = "; ".join(x for x in (note, f"no run_relation.py workdir at {cfg.eval.scorer!r}: style fidelity "
                                           "left out") if x)
    results = {"config": {"test_styles": test, "samples": M, "length": T, "steps": cfg.eval.steps,
                          "scorer": cfg.eval.scorer if scorer else "", "melody_workdir_note": note,
                          "tuning": tuning},
               "methods": {}}
    spq = enc.steps_per_quarter
    for K in cfg.eval.shots:
        draws = style_draws(corpus, test, K, M, T, np.random.default_rng([cfg.seed, 9, K]))
        rows = {}
        for i, st in enumerate(test):
            (s_tok, s_mask, s_pos), (q_tok, q_mask, _) = draws[st]
            ref_mels, ref_lens = _melodies(q_tok, gan.valid_mask(q_tok, q_mask, enc.num_classes), enc)
            ref_feats = mm.set_features(ref_mels, spq)
            sets = {SUPPORT: _melodies(s_tok, gan.valid_mask(s_tok, s_mask, enc.num_classes), enc),
                    HELD_OUT: (ref_mels, ref_lens)}
            gens = {}
            for j, (name, fn) in enumerate(methods.items()):
                key = jax.random.PRNGKey(cfg.seed * 1000 + i * 37 + j)
                tok = np.asarray(fn((jnp.asarray(s_tok), jnp.asarray(s_mask), jnp.asarray(s_pos)), key, M))
                gens[name] = tok
                sets[name] = _melodies(tok, np.ones_like(tok), enc)
            others = [draws[o][0] for o in test if o != st][: cfg.eval.distractors]
            for name, (mels, lens) in sets.items():
                r = rows.setdefault(name, {"mgeval": [], "validity": [], "fidelity": []})
                if name != HELD_OUT:
                    r["mgeval"].append(mm.mgeval(mm.set_features(mels, spq), ref_feats))
                r["validity"].append(mm.validity(mels, lens, 4 * spq))
                if scorer is None or name == SUPPORT:
                    continue
                if name == HELD_OUT:
                    q = (q_tok, q_mask)
                else:
                    tok = np.concatenate([np.full((M, 1), enc.bos, np.int32), gens[name][:, :T - 1]], 1)
                    q = (tok, np.ones_like(tok, np.float32))
                r["fidelity"].append(style_fidelity(scorer, q, (s_tok, s_mask), others))
        results["methods"][f"K={K}"] = {name: _summarize(r, M * len(test)) for name, r in rows.items()}
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(workdir, "eval.md"), "w") as f:
        f.write(markdown(results))
    plot(results, os.path.join(workdir, "eval.png"))
    return results


def _summarize(r: dict, n_scored: int) -> dict:
    out = {}
    if r["mgeval"]:
        per = {f: {m: float(np.mean([x[f][m] for x in r["mgeval"]])) for m in ("overlap", "kl")} for f in mm.FEATURES}
        out["mgeval"] = per
        out["overlap_mean"] = float(np.mean([v["overlap"] for v in per.values()]))
        out["kl_mean"] = float(np.mean([v["kl"] for v in per.values()]))
    out["validity"] = {k: float(np.mean([v[k] for v in r["validity"]])) for k in r["validity"][0]}
    if r["fidelity"]:
        p = float(np.mean(r["fidelity"]))
        out["fidelity"] = p
        out["fidelity_ci95"] = 1.96 * math.sqrt(p * (1 - p) / n_scored)
    return out


COLUMNS = [("overlap_mean", "MGEval overlap (higher)", max), ("kl_mean", "MGEval KL (lower)", min),
           ("empty_bar_rate", "empty bars", None), ("pitch_classes_used", "pitch classes", None),
           ("in_scale_ratio", "in-scale", None), ("notes_2_steps_or_longer", "notes >= 2 steps", None),
           ("fidelity", "style fidelity (higher)", max)]


def _value(r: dict, key: str):
    return r.get(key, r.get("validity", {}).get(key))


def markdown(results: dict) -> str:
    c = results["config"]
    lines = [f"Meta-test styles: {', '.join(c['test_styles'])}. Per style and method {c['samples']} generated "
             f"melodies of {c['length']} steps against {c['samples']} held-out tunes of the style; means over "
             f"styles. Validity columns: the closest to the held-out tunes' value is best.", ""]
    for k, v in c.get("tuning", {}).items():
        lines += [f"{k}: {v}.", ""]
    if c.get("melody_workdir_note"):
        lines += [f"Left out: {c['melody_workdir_note']}.", ""]
    for k, methods in results["methods"].items():
        lines += [f"### {k}", "", "| method | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
                  "| --- |" + " --- |" * len(COLUMNS)]
        order = sorted(methods, key=lambda n: -methods[n].get("overlap_mean", 2.0))
        for name in order:
            r = methods[name]
            cells = []
            for key, _, _ in COLUMNS:
                v = _value(r, key)
                if v is None:
                    cells.append("-")
                elif key == "fidelity":
                    cells.append(f"{v:.3f} +- {r['fidelity_ci95']:.3f}")
                else:
                    cells.append(f"{v:.3f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Closest to the target style among generators: " + "; ".join(_best(methods)) + ".", ""]
    return "\n".join(lines)


def _best(methods: dict) -> list[str]:
    """Which generator wins each measure (references excluded)."""
    gens = {n: r for n, r in methods.items() if n not in (SUPPORT, HELD_OUT)}
    target = methods.get(HELD_OUT, {}).get("validity", {})
    out = []
    for key, head, pick in COLUMNS:
        vals = {n: _value(r, key) for n, r in gens.items() if _value(r, key) is not None}
        if not vals:
            continue
        if pick is None:  # validity: nearest to the held-out tunes
            if key not in target:
                continue
            best = min(vals, key=lambda n: abs(vals[n] - target[key]))
        else:
            best = pick(vals, key=vals.get)
        out.append(f"{head}: {best}")
    return out


def plot(results: dict, path: str) -> None:
    """Per-feature MGEval overlap area, one panel per K, one bar group per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(results["methods"].items())
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.6 * len(panels)), squeeze=False)
    for ax, (k, methods) in zip(axes[:, 0], panels):
        names = [n for n in methods if "mgeval" in methods[n]]
        w = 0.8 / max(len(names), 1)
        x = np.arange(len(mm.FEATURES))
        for i, n in enumerate(names):
            ax.bar(x + i * w, [methods[n]["mgeval"][f]["overlap"] for f in mm.FEATURES], w, label=n)
        ax.set_xticks(x + 0.4 - w / 2)
        ax.set_xticklabels([f.replace("_", " ") for f in mm.FEATURES], fontsize=8)
        ax.set_ylabel("overlap area")
        ax.set_ylim(0, 1)
        ax.set_title(f"{k}: MGEval overlap with held-out tunes of the style (higher is closer)")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
