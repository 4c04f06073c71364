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

from metamusic import baselines, progress
from metamusic.errors import MetamusicError
from metamusic.eval import music_metrics as mm
from metamusic.eval import paired
from metamusic.eval import quality_diversity as qd
from metamusic.eval import two_sample
from metamusic.eval.draws import style_draws
from metamusic.experiments import base, gan

SUPPORT = "support tunes (reference)"
HELD_OUT = "held-out tunes (target)"
MELODY_JOINT = "melody LM, joint (unadapted)"


def gan_methods(exp: base.Experiment, workdir: str) -> tuple[dict, dict]:
    """label -> (adapt, sample) for the trained GANs, and tuning notes.

    adapt(support (tok, mask, pos), key) -> the adapted generator; sample(adapted, key, num, temperature)
    -> tokens [num, T]. Meta-GANs adapt with eval.steps inner steps (the amortized one conditions on the
    support set); the joint GAN and the MLE generator as trained, and fine-tuned with the inner lrs
    scaled by the factor chosen on meta-val (`baselines.finetune_choice`; the MLE generator's by its
    own likelihood loss)."""
    cfg = exp.cfg
    T = cfg.data.length
    out, notes = {}, {}
    for name in exp.methods:
        algo, meta = exp.algorithm(name), base.restore(exp, workdir, name)
        variants = [(exp.label(name), algo, cfg.eval.steps)]
        if name in exp.baselines:
            choice = baselines.finetune_choice(workdir, gan.tuning(exp, name), meta, method=name)
            notes[f"{exp.label(name)}: fine-tuning lr scale (chosen on meta-val)"] = choice.candidate
            loss = exp.parts.mle_loss if name == gan.MLE else exp.loss_fn
            tuned = baselines.finetune_algorithm(loss, choice.lr, choice.steps, cfg.meta.remat)
            variants = [(exp.label(name), algo, 0), (exp.label(name) + ", fine-tuned", tuned, choice.steps)]
        for label, a, steps in variants:
            adapt = jax.jit(lambda m, sup, k, a=a, n=steps: a.adapt(m, sup, k, steps=n).params["g"])
            out[label] = (lambda sup, key, m=meta, f=adapt: (f(m, sup, key), sup),
                          lambda gs, key, num, t: exp.sample(gs[0], num, T, key, temperature=t,
                                                                      support=gs[1]))
    return out, notes


def melody_methods(cfg, mworkdir: str, corpus) -> tuple[dict, str]:
    """The melody LMs of a run_maml.py workdir as (adapt, sample) pairs, or ({}, reason) when they cannot
    be compared."""
    try:
        mexp = gan.melody_run(mworkdir, corpus)
    except MetamusicError as e:
        return {}, str(e)
    mcfg = mexp.cfg
    T = cfg.data.length
    out, missing = {}, []
    # every meta-learned melody method of that run (the best adapted melody model is among them), and the
    # joint model unadapted
    rows = [(a, mcfg.eval.steps, f"melody LM, {a} adapted") for a in mexp.algorithms]
    for name, steps, label in rows + [(baselines.JOINT, 0, MELODY_JOINT)]:
        algo = mexp.algorithm(name)
        try:
            meta = base.restore(mexp, mworkdir, name)
        except (MetamusicError, ValueError, KeyError) as e:  # a missing or incompatible checkpoint: row left out
            missing.append(f"{mworkdir}/{name}: {e}")
            continue
        adapt = jax.jit(lambda m, sup, k, a=algo, n=steps: a.adapt(m, sup, k, steps=n).params)
        out[label] = (lambda sup, key, m=meta, f=adapt: (f(m, sup, key), sup),
                      lambda ps, key, num, t: mexp.sample(ps[0], ps[1], num=num, length=T + 1,
                                                                   temperature=t, key=key)[:, 1:])
    return out, "; ".join(missing)


def _melodies(tok: np.ndarray, valid: np.ndarray, enc) -> tuple[list, list]:
    mels, lens = [], []
    for t, v in zip(tok, valid):
        t = t[v > 0]
        mels.append(mm.notes(t, enc.min_note, enc.num_classes))
        lens.append(len(t))
    return mels, lens


def temperatures(cfg) -> list[float]:
    """The sampling temperatures evaluated: the sweep's and the tables' (eval.temperature)."""
    return sorted({float(t) for t in cfg.eval.get("temperatures", ())} | {float(cfg.eval.temperature)})


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
    temps, t_table = temperatures(cfg), float(cfg.eval.temperature)
    results = {"config": {"test_styles": test, "samples": M, "length": T, "steps": cfg.eval.steps,
                          "scorer": cfg.eval.scorer if scorer else "", "melody_workdir_note": note,
                          "tuning": tuning, "temperature": t_table, "temperatures": temps},
               "methods": {}, "curves": {}, "matched": {}, "paired": {}, "two_sample": {}, "per_style": {}}
    spq = enc.steps_per_quarter
    n_c2st = int(cfg.eval.two_sample_samples)
    for K in cfg.eval.shots:
        draws = style_draws(corpus, test, K, M, T, np.random.default_rng([cfg.seed, 9, K]))
        rows, sweep, c2st_fakes = {}, {}, {}
        c2st_real = [two_sample.openings(corpus, st, T, n_c2st, np.random.default_rng([cfg.seed, 41, K, i]))
                     for i, st in enumerate(test)] if n_c2st else []
        label, show = f"evaluate: K={K}", bool(cfg.progress)
        # the first style compiles every method's adaptation and samplers: the ETA reads the styles after it
        with progress.phase(f"{label}, samples", len(test) * len(methods) * len(temps), show,
                            warmup=len(methods) * len(temps)):
            for i, st in enumerate(test):
                (s_tok, s_mask, s_pos), (q_tok, q_mask, _) = draws[st]
                ref_mels, ref_lens = _melodies(q_tok, gan.valid_mask(q_tok, q_mask, enc.num_classes), enc)
                ref_feats = mm.set_features(ref_mels, spq)
                others = [draws[o][0] for o in test if o != st][: cfg.eval.distractors]
                sup = (jnp.asarray(s_tok), jnp.asarray(s_mask), jnp.asarray(s_pos))

                def scored(mels, lens, tok=None, q=None):
                    """Every measure of one set against this style's held-out tunes."""
                    feats = mm.set_features(mels, spq)
                    per = mm.mgeval(feats, ref_feats)
                    r = {"mgeval": per, "overlap_mean": float(np.mean([v["overlap"] for v in per.values()])),
                         "validity": mm.validity(mels, lens, 4 * spq, spq),
                         "diversity": mm.relative_diversity(feats, ref_feats), "distinct": mm.distinct_ngrams(mels)}
                    if scorer is not None and (tok is not None or q is not None):
                        if q is None:
                            tok = np.concatenate([np.full((len(tok), 1), enc.bos, np.int32), tok[:, :T - 1]], 1)
                            q = (tok, np.ones_like(tok, np.float32))
                        r["fidelity"] = style_fidelity(scorer, q, (s_tok, s_mask), others)
                    return r

                refs = {SUPPORT: scored(*_melodies(s_tok, gan.valid_mask(s_tok, s_mask, enc.num_classes), enc)),
                        HELD_OUT: scored(ref_mels, ref_lens, q=(q_tok, q_mask))}
                for k in ("mgeval", "overlap_mean"):  # (the target compared with itself)
                    refs[HELD_OUT].pop(k)
                for name, r in refs.items():
                    rows.setdefault(name, []).append(r)
                # one key per style, the same for every method: a method's figures do not depend on which other
                # methods are evaluated beside it (a key per method index moved the unadapted melody LM's overlap
                # from 0.819 to 0.837 when rows were added), and the methods share their random numbers
                key = jax.random.PRNGKey(cfg.seed * 1000 + i * 37)
                for name, (adapt, sample) in methods.items():
                    adapted = adapt(sup, key)
                    for t in temps:  # the same key at every temperature: the curve's points differ by temperature only
                        tok = np.asarray(sample(adapted, jax.random.fold_in(key, 1), M, t))
                        r = scored(*_melodies(tok, np.ones_like(tok), enc), tok=tok)
                        sweep.setdefault(name, {}).setdefault(t, []).append(r)
                        if t == t_table:
                            rows.setdefault(name, []).append(r)
                        progress.advance(1)
                    if n_c2st:  # the two-sample test's melodies: as many as the style's real openings, at t_table
                        n = len(c2st_real[i][0])
                        c2st_fakes.setdefault(name, []).append(np.asarray(sample(adapted, jax.random.fold_in(key, 2), n,
                                                                                 t_table)))
        if n_c2st:
            real, valid = (np.concatenate(x) for x in zip(*c2st_real))
            results["two_sample"][f"K={K}"] = {}
            with progress.phase(f"{label}, two-sample tests", len(c2st_fakes), show) as tests_bar:
                for name, f in c2st_fakes.items():
                    results["two_sample"][f"K={K}"][name] = two_sample.test(
                        real, valid, np.concatenate(f), enc.num_classes, cfg.seed, steps=int(cfg.eval.two_sample_steps))
                    tests_bar.advance(1)
        n_scored = M * len(test)
        results["methods"][f"K={K}"] = {name: _summarize(r, n_scored) for name, r in rows.items()}
        curves = {name: [{"temperature": t, **_summarize(rs, n_scored)} for t, rs in sorted(per_t.items())]
                  for name, per_t in sweep.items()}
        results["curves"][f"K={K}"] = curves
        held = results["methods"][f"K={K}"][HELD_OUT]
        targets = {"distinct_4grams": held["distinct_4grams"], "diversity": 1.0}
        results["matched"][f"K={K}"] = {name: qd.matched(c, targets, t_table) for name, c in curves.items()}
        results["paired"][f"K={K}"] = paired_over_styles(rows, reference_rows(rows))
        results["per_style"][f"K={K}"] = per_style(sweep, rows[HELD_OUT])
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(workdir, "eval.md"), "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(markdown(results))
    plot(results, os.path.join(workdir, "eval.png"))
    qd.plot(results, os.path.join(workdir, "quality_diversity.png"), SUPPORT, HELD_OUT)
    return results


def _nanmean(xs: list) -> float:
    """Mean of the defined values (NaN where a measure is undefined for every style, e.g. groove
    consistency of one-bar windows)."""
    xs = [x for x in xs if np.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _summarize(rs: list, n_scored: int) -> dict:
    """Means over styles of one method's per-style measures."""
    out = {}
    if rs[0].get("mgeval"):
        per = {f: {m: float(np.mean([x["mgeval"][f][m] for x in rs])) for m in ("overlap", "kl")}
               for f in mm.FEATURES}
        out["mgeval"] = per
        out["overlap_mean"] = float(np.mean([v["overlap"] for v in per.values()]))
        out["kl_mean"] = float(np.mean([v["kl"] for v in per.values()]))
    out["validity"] = {k: _nanmean([x["validity"][k] for x in rs]) for k in rs[0]["validity"]}
    out["diversity"] = _nanmean([x["diversity"] for x in rs])
    out["distinct_4grams"] = _nanmean([x["distinct"] for x in rs])
    if "fidelity" in rs[0]:
        p = float(np.mean([x["fidelity"] for x in rs]))
        out["fidelity"] = p
        out["fidelity_ci95"] = 1.96 * math.sqrt(p * (1 - p) / n_scored)
    return out


PER_STYLE = {"overlap_mean": "overlap_mean", "fidelity": "fidelity", "distinct_4grams": "distinct",
             "diversity": "diversity"}


def per_style(sweep: dict, held_out: list) -> dict:
    """method -> temperature -> measure -> [value per meta-test style] (and the held-out tunes' own
    diversity per style): what `eval.compare_runs` pairs across runs evaluated on the same draws."""
    out = {name: {str(t): {k: [r.get(src) for r in rs] for k, src in PER_STYLE.items() if src in rs[0]}
                  for t, rs in per_t.items()} for name, per_t in sweep.items()}
    out[HELD_OUT] = {"distinct_4grams": [r["distinct"] for r in held_out]}
    return out


def reference_rows(rows: dict) -> list:
    """What every generator is paired against: the joint GAN and every melody LM row present."""
    joint = gan.LABELS[baselines.JOINT]
    return [n for n in rows if n == joint] + [n for n in rows if n.startswith("melody LM")]


def paired_over_styles(rows: dict, refs: list) -> dict:
    """method -> reference -> measure -> `paired.paired_difference` of the method minus the reference over
    the meta-test styles (same support and held-out tunes per style, so style difficulty cancels), for
    MGEval overlap and style fidelity at the tables' temperature; higher is better for both."""
    out = {}
    for name, rs in rows.items():
        if name in (SUPPORT, HELD_OUT):
            continue
        for ref in refs:
            if ref == name:
                continue
            for key in ("overlap_mean", "fidelity"):
                if key == "fidelity" and "fidelity" not in rs[0]:
                    continue
                out.setdefault(name, {}).setdefault(ref, {})[key] = paired.paired_difference(
                    [x[key] for x in rs], [x[key] for x in rows[ref]])
    return out


COLUMNS = [("overlap_mean", "MGEval overlap (higher)", max), ("kl_mean", "MGEval KL (lower)", min),
           ("diversity", "diversity (1 = real)", None), ("distinct_4grams", "distinct 4-grams", None),
           ("empty_bar_rate", "empty bars", None), ("pitch_classes_used", "pitch classes", None),
           ("pitch_class_entropy", "pitch-class entropy", None), ("scale_consistency", "scale consistency", None),
           ("groove_consistency", "groove consistency", None), ("notes_2_steps_or_longer", "notes >= 2 steps", None),
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
        lines += qd.markdown_lines(k, results.get("matched", {}).get(k, {}), c.get("temperatures", []))
        lines += _paired_lines(k, results.get("paired", {}).get(k, {}), len(c["test_styles"]))
        lines += _two_sample_lines(k, results.get("two_sample", {}).get(k, {}))
    return "\n".join(lines)


def _two_sample_lines(k: str, rows: dict) -> list:
    """The classifier two-sample test of each generator (`eval.two_sample`), most real-like first."""
    if not rows:
        return []
    n = next(iter(rows.values()))["n"]
    lines = [f"Two-sample test, {k}: held-out accuracy of a fresh critic (4 bars' receptive field, no penalty, "
             f"4-fold cross-fitted) telling each generator's melodies from the openings of held-out tunes "
             f"({n} examples, half real; 0.5 = indistinguishable, lower is more real-like; 95% Wilson CI):", "",
             "| method | accuracy | 95% CI |", "| --- | --- | --- |"]
    for name in sorted(rows, key=lambda m: rows[m]["accuracy"]):
        r = rows[name]
        lines.append(f"| {name} | {r['accuracy']:.3f} | [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] |")
    return lines + [""]


def _paired_lines(k: str, rows: dict, n_styles: int) -> list:
    """Each generator minus each reference (joint GAN, melody LMs), paired over styles, with 95% CIs."""
    refs = sorted({r for per in rows.values() for r in per}, key=lambda r: (not r.startswith("joint"), r))
    if not rows or not refs:
        return []
    keys = [key for key in ("overlap_mean", "fidelity") if any(key in v for per in rows.values() for v in per.values())]
    names = {"overlap_mean": "overlap", "fidelity": "fidelity"}
    head = [f"{names[key]} - {r}" for key in keys for r in refs]
    lines = [f"Paired differences, {k}: method minus reference, mean over the {n_styles} styles +- 95% CI "
             "(Student t; the same support and held-out tunes per style; * where the CI excludes zero):", "",
             "| method | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(head)]
    for name, per in rows.items():
        cells = []
        for key in keys:
            for r in refs:
                d = per.get(r, {}).get(key)
                cells.append("-" if d is None else
                             f"{d['mean']:+.3f} +- {d['ci95']:.3f}{' *' if d['excludes_zero'] else ''}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


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
