"""Few-shot adaptation on unseen (meta-test) styles, with baselines and 95% CIs.

For every K in cfg.eval.shots, `cfg.eval.episodes` tasks are drawn from meta-test
styles with a fixed seed: K support tunes from each style's support pool, Q query
tunes from its query pool (never the same tunes), each one window or, with
eval.tune_windows=W > 1, the whole tune as W windows. Each method adapts on the support
windows and is scored on the query windows before adaptation and after each step:
  <algorithm>   every meta-trained variant in the workdir, with its own inner loop;
  joint         the jointly trained model, not adapted (baseline a);
  finetune      the joint model fine-tuned by SGD on the support (baseline b), its lr
                and number of steps chosen on meta-val tasks, never on meta-test;
  scratch       a freshly initialized model trained on the support only (baseline c),
                its lr and steps also chosen on meta-val;
  <algorithm>+finetune  (eval.finetune_after) the algorithm's adaptation, then SGD on every
                weight with its lr and steps chosen on meta-val; its curve starts adapted;
  oracle        the ceiling: per style, the best whole-support-pool adaptation of a family
                (starts x Adam lrs), chosen on held-out support-pool tunes (`metamusic.oracle`).
Fine-tuning's lr and steps (and every "+finetune" row's, and scratch's) are chosen on meta-val at
each K where baselines.tune_per_k is set, else once at the middle K.
Reported per step: query NLL per event (nats, bits), perplexity, event accuracy,
each mean +- 1.96 standard errors over episodes. Beside each method, from its final
step: the paired difference to the joint model and to fine-tuning over the same
episodes (95% CI), and the share of the joint -> oracle headroom it closes.
"""

from __future__ import annotations

import json
import math
import os
import time

import jax
import numpy as np

from metamusic import baselines, devices, oracle, progress
from metamusic.data.episodes import styles_per_k
from metamusic.errors import MetamusicError
from metamusic.eval.chunked import adapt_curves, map_chunks
from metamusic.eval.paired import headroom_closed, paired_difference
from metamusic.experiments import base, inputs, melody
from metamusic.experiments.methods import adapter, then_finetuned_rows, tuned_shots

LN2 = math.log(2.0)


def _curves(adapt, meta, tasks, steps: int, cfg):
    """Per-episode query NLL and accuracy after 0..steps inner steps: arrays [episodes, steps+1]."""
    nll, aux = adapt_curves(adapt, meta, tasks, steps, cfg.eval.chunk, cfg.seed, inputs.to_task,
                            devices.mesh_from_config(cfg))
    return nll, aux["accuracy"]


def _summary(nll: np.ndarray, acc: np.ndarray) -> dict:
    n = nll.shape[0]
    m, se = nll.mean(0), nll.std(0, ddof=1) / math.sqrt(n)
    am, ase = acc.mean(0), acc.std(0, ddof=1) / math.sqrt(n)
    return {"episodes": n, "nll_nats": m.tolist(), "nll_nats_ci95": (1.96 * se).tolist(),
            "nll_bits": (m / LN2).tolist(), "nll_bits_ci95": (1.96 * se / LN2).tolist(),
            "perplexity": np.exp(m).tolist(), "perplexity_ci95": [np.exp(m - 1.96 * se).tolist(),
                                                                  np.exp(m + 1.96 * se).tolist()],
            "accuracy": am.tolist(), "accuracy_ci95": (1.96 * ase).tolist()}


def adapted_params(algo, meta, steps=None):
    """(support, key) -> adapted params, compiled once per method (meta passed as an argument)."""
    run = jax.jit(lambda m, support, key: algo.adapt(m, support, key, steps=steps).params)
    return lambda support, key: run(meta, support, key)


def adapters(exp: base.Experiment, workdir: str, shots: int | None = None, trained: dict | None = None
             ) -> tuple[dict, dict]:
    """Every method of a melody run as (algorithm, meta), the joint model's fine-tuned and from-scratch
    variants included (their settings chosen on meta-val at K=`shots` where the run tunes per K,
    `methods.tuned_shots`), and the tuning record. Meta-learned algorithms adapt with their trained inner
    steps. trained: {name: Adapter} of the run's trained methods and the joint model, restored once by
    the caller (`trained_adapters`); None reads them now.
    """
    trained = trained_adapters(exp, workdir) if trained is None else trained
    joint = trained[baselines.JOINT]
    ft = adapter(exp, workdir, baselines.FINETUNE, joint.meta, field="method", shots=shots)
    fresh = {"params": exp.init_params()}
    sc = baselines.choose(melody.tuning(exp, baselines.SCRATCH, shots=tuned_shots(exp, shots)), fresh)
    methods = {name: (a.algorithm, a.meta) for name, a in trained.items()}
    methods[baselines.FINETUNE] = (ft.algorithm, ft.meta)
    methods[baselines.SCRATCH] = (baselines.finetune_algorithm(exp.loss_fn, sc.lr, sc.steps, exp.cfg.meta.remat),
                                  fresh)
    tuning = {baselines.FINETUNE: ft.choice.summary(), baselines.SCRATCH: sc.summary()}
    for row, name in then_finetuned_rows(exp).items():  # "<method>+finetune" (eval.finetune_after)
        then = adapter(exp, workdir, row, trained[name].meta, field="method", shots=shots)
        methods[row] = (then.algorithm, then.meta)
        tuning[row] = then.choice.summary()
    return methods, tuning


def tuning_units(exp: base.Experiment) -> int:
    """The work of `adapters` at one K in progress units, if no choice is read from disk: fine-tuning, training
    from scratch and every "<method>+finetune" row, each over its lrs on baselines.tune_episodes meta-val
    episodes (as `melody.tuning` declares it; a choice read from disk is taken off the total then)."""
    cfg, n = exp.cfg, exp.cfg.baselines.tune_episodes
    return (melody.tuning_units(cfg, baselines.FINETUNE, n) * (1 + len(then_finetuned_rows(exp)))
            + melody.tuning_units(cfg, baselines.SCRATCH, n))


def trained_adapters(exp: base.Experiment, workdir: str) -> dict:
    """{name: Adapter} of every trained method of a melody run and the joint model, each restored once."""
    found = {name: adapter(exp, workdir, name, field="method") for name in exp.algorithms}
    found[baselines.JOINT] = adapter(exp, workdir, baselines.JOINT, field="method")
    return found


def oracle_starts(exp: base.Experiment, methods: dict) -> dict:
    """{start: (fit windows, key) -> params}: where the style oracle's fine-tuning starts, for every name of
    baselines.oracle_from the run trained: the joint model as it is, a conditioned method (amortized, CAVIA)
    adapted with eval.steps on the style's whole fit pool."""
    import jax.numpy as jnp

    starts = {}
    for name in exp.cfg.baselines.get("oracle_from", (baselines.JOINT,)):
        if name == baselines.JOINT:
            params = methods[baselines.JOINT][1]["params"]
            starts[name] = lambda fit, key, p=params: p
        elif name in exp.algorithms:
            algo, meta = methods[name]
            run = adapted_params(algo, meta, exp.cfg.eval.steps)
            starts[name] = lambda fit, key, run=run: run(tuple(jnp.asarray(x) for x in fit), key)
    return starts


def oracle_scores(exp: base.Experiment, oracles: dict, tasks):
    """Query NLL and accuracy of each episode under its style's oracle: arrays [episodes, 1]."""
    @jax.jit
    def score(params, query):
        loss, aux = jax.vmap(lambda q: exp.loss_fn(params, q, None))(query)
        return loss, aux["accuracy"]

    nll, acc = np.full(len(tasks.style), np.nan), np.full(len(tasks.style), np.nan)
    for k, params in oracles.items():
        sel = np.flatnonzero(tasks.style == k)
        if sel.size:
            sub = type(tasks)(*(x[sel] for x in tasks))
            nll[sel], acc[sel] = map_chunks(lambda part, a: score(params, inputs.to_task(part).query), sub,
                                            exp.cfg.eval.chunk)
            progress.advance(progress.curve_units(sel.size, 0))
    return nll[:, None], acc[:, None]


def add_paired(res: dict, final: dict) -> None:
    """Adds to each method's entry its paired differences (final step) to the joint model and to
    fine-tuning, and the share of the joint -> oracle headroom it closes, over the same episodes."""
    joint, ft, oracle = final[baselines.JOINT], final[baselines.FINETUNE], final[baselines.ORACLE]
    for name, x in final.items():
        res[name]["paired"] = {"vs_joint": paired_difference(x, joint), "vs_finetune": paired_difference(x, ft)}
        res[name]["headroom_closed"] = headroom_closed(joint, x, oracle)


def evaluate(exp: base.Experiment, workdir: str, test_corpus=None, name: str = "eval") -> dict:
    """Runs the evaluation; writes workdir/<name>.json, .md and .png; returns the results.

    test_corpus: score on its meta-test styles instead of the experiment's (cross-corpus
    evaluation, `inputs.load_test_data`); baselines are still tuned on the experiment's meta-val.
    """
    cfg = exp.cfg
    corpus = test_corpus if test_corpus is not None else exp.corpus
    out = {"config": {"shots": list(cfg.eval.shots), "episodes": cfg.eval.episodes, "queries": cfg.data.queries,
                      "length": cfg.data.length, "test_styles": corpus.styles_in("test")},
           "methods": {}}
    if melody.eval_tune_windows(cfg) > 1:
        out["config"]["tune_windows"] = melody.eval_tune_windows(cfg)
    if test_corpus is not None:
        out["config"]["test_root"] = cfg.eval.root
        out["config"]["dropped"] = corpus.report.get("dropped", {})
    # which styles can serve each K, known before any work: a K no style can serve is an error now, not
    # after the tuning and the other K; a style too small for some K is left out of those K and named
    test_styles = corpus.styles_in("test")
    serve, left_out = styles_per_k(corpus, test_styles, cfg.eval.shots, cfg.data.queries)
    if left_out:
        out["config"]["left_out"] = left_out
    if not any(serve.values()):
        raise MetamusicError(f"no meta-test style has enough tunes for any K of eval.shots={list(cfg.eval.shots)} "
                             f"with data.queries={cfg.data.queries} query tunes: {left_out}; "
                             "lower eval.shots or data.queries")
    show = bool(cfg.progress)
    t0 = time.perf_counter()
    trained = trained_adapters(exp, workdir)
    out["tuning"] = {}
    with progress.phase("evaluate: ceiling fits", 1, show):  # its total comes from fit_oracles
        oracles, out["tuning"][baselines.ORACLE] = oracle.fit_oracles(
            exp, oracle_starts(exp, {n: (a.algorithm, a.meta) for n, a in trained.items()}), corpus=corpus)
    out["seconds"] = {"oracle_fit": round(time.perf_counter() - t0, 1), "tuning": 0.0}
    tuned = {}  # tuned K (None: the one choice for every K) -> (methods, their choices)
    for shots in cfg.eval.shots:
        if not serve[shots]:
            continue
        t1 = time.perf_counter()
        if tuned_shots(exp, shots) not in tuned:  # one tuning serves every K unless the run tunes per K
            with progress.phase(f"evaluate: tuning at K={shots}", tuning_units(exp), show):
                tuned[tuned_shots(exp, shots)] = adapters(exp, workdir, shots, trained)
        methods, chosen = tuned[tuned_shots(exp, shots)]
        out["tuning"][f"K={shots}"] = chosen
        out["seconds"]["tuning"] = round(out["seconds"]["tuning"] + time.perf_counter() - t1, 1)
        t2 = time.perf_counter()
        tasks = melody.episodes(cfg, corpus, "test", shots, cfg.eval.episodes, 2,
                                styles=None if serve[shots] == test_styles else serve[shots])
        rows = {name: cfg.eval.steps for name in exp.algorithms}
        rows.update({row: chosen[row]["steps"] for row in then_finetuned_rows(exp)})
        rows.update({baselines.FINETUNE: chosen[baselines.FINETUNE]["steps"],
                     baselines.SCRATCH: chosen[baselines.SCRATCH]["steps"], baselines.ORACLE: 0})
        with progress.phase(f"evaluate: K={shots}", sum(progress.curve_units(len(tasks[0]), n) for n in rows.values()),
                            show):
            curves = {name: _curves(methods[name][0].adapt, methods[name][1], tasks, rows[name], cfg)
                      for name in rows if name not in (baselines.SCRATCH, baselines.ORACLE)}
            curves[baselines.JOINT] = tuple(c[:, :1] for c in curves[baselines.FINETUNE])  # before any step
            sc_algo, fresh = methods[baselines.SCRATCH]
            curves[baselines.SCRATCH] = _curves(sc_algo.adapt, fresh, tasks, rows[baselines.SCRATCH], cfg)
            curves[baselines.ORACLE] = oracle_scores(exp, oracles, tasks)
        res = {name: _summary(*c) for name, c in curves.items()}
        add_paired(res, {name: c[0][:, -1] for name, c in curves.items()})
        out["methods"][f"K={shots}"] = res
        out["seconds"][f"K={shots}"] = round(time.perf_counter() - t2, 1)
    _write(out, workdir, name)  # the scores so far, kept whatever the sampling phases below meet
    # samples (style fidelity, listening clips) adapt on eval.fidelity_shots tunes: that K's choices, made
    # above where that K was evaluated
    k = tuned_shots(exp, cfg.eval.fidelity_shots)
    methods, _ = tuned[k] if k in tuned else adapters(exp, workdir, cfg.eval.fidelity_shots, trained)
    fid = {name: adapted_params(algo, meta, cfg.eval.steps if name in exp.algorithms else None)
           for name, (algo, meta) in methods.items() if name != baselines.SCRATCH}
    if cfg.eval.scorer and not os.path.exists(os.path.join(cfg.eval.scorer, "config.json")):
        out["style_fidelity_note"] = (f"skipped: no run_relation.py run at eval.scorer={cfg.eval.scorer} (train one, "
                                      "then --mode=eval scores every generative row)")
    elif cfg.eval.scorer:
        from metamusic.eval import sample_fidelity

        t3 = time.perf_counter()
        left = {}
        out["style_fidelity"] = sample_fidelity.evaluate(exp, fid, cfg.eval.scorer, corpus, left_out=left)
        if left:
            out["style_fidelity_note"] = (f"left out {', '.join(f'{st} ({why})' for st, why in left.items())}: "
                                          f"fewer than eval.fidelity_shots={cfg.eval.fidelity_shots} support-pool or "
                                          f"eval.samples={cfg.eval.samples} query-pool tunes"
                                          + ("; fewer than 2 styles left, nothing scored" if not out["style_fidelity"]
                                             else ""))
        out["seconds"]["style_fidelity"] = round(time.perf_counter() - t3, 1)
    if cfg.eval.get("listen", 0):
        from metamusic.eval import listen

        t3 = time.perf_counter()
        clips = listen.log_samples(exp, fid, corpus, workdir, cfg.eval.listen, cfg.eval.fidelity_shots)
        out["seconds"]["listen"] = round(time.perf_counter() - t3, 1)
        out["listen"] = {"clips": clips, "tensorboard": os.path.join(workdir, "tb", "eval")}
    _write(out, workdir, name)
    return out


def _write(out: dict, workdir: str, name: str) -> None:
    """workdir/<name>.json, .md and .png of the results so far (written again when later phases add to them)."""
    tmp = os.path.join(workdir, f"{name}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, os.path.join(workdir, f"{name}.json"))
    from metamusic.eval import report

    with open(os.path.join(workdir, f"{name}.md"), "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(report.markdown(out))
    report.plot(out, os.path.join(workdir, f"{name}.png"))
