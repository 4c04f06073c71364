"""In-context meta-learning (models/incontext.py, meta.algorithm=incontext): the prompt is read as the
style, and the method runs through training, evaluation and generation like every other."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import synth
from configs import maml_tiny
from metamusic import experiments
from metamusic.data import TaskSampler
from metamusic.errors import MetamusicError
from metamusic.eval import fewshot
from metamusic.experiments import inputs
from metamusic.generate import generate
from metamusic.meta.outer import init_state, outer_step
from metamusic.models.incontext import InContextLM, with_prompt
from metamusic.train.trainer import train


def _cfg():
    cfg = maml_tiny.get_config()
    cfg.model.name, cfg.meta.algorithm = "incontext", "incontext"
    return cfg


def test_the_prompt_is_read_and_padding_in_it_is_not():
    m = InContextLM(vocab_size=40, dim=16, layers=2, heads=2, bar_positions=20)
    x = jnp.zeros((3, 15), jnp.int32)
    params = m.init(jax.random.PRNGKey(0), x, x)
    tok = jax.random.randint(jax.random.PRNGKey(1), (4, 16), 2, 40).at[::2, 0].set(1)
    mask = jnp.ones((4, 16)).at[3, 9].set(0)
    # the gates start closed: with a prompt the model predicts exactly as without (a joint model's start)
    shut = m.apply(with_prompt(params, tok, mask, tok % 20, bos=1, max_windows=8), x, x)
    np.testing.assert_array_equal(np.asarray(shut), np.asarray(m.apply(params, x, x)))
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: v + 1.0 if "prompt_gate" in jax.tree_util.keystr(path) else v, params)  # opened
    a = m.apply(with_prompt(params, tok, mask, tok % 20, bos=1, max_windows=8), x, x)
    assert float(jnp.abs(a - m.apply(params, x, x)).max()) > 1e-3  # the prompt changes the prediction
    b = m.apply(with_prompt(params, tok.at[3, 9].set(7), mask, tok % 20, bos=1, max_windows=8), x, x)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)  # a masked prompt token is not read
    # a window's first token repeats the previous window's last unless it is BOS: not read twice
    c = m.apply(with_prompt(params, tok.at[1, 0].set(9), mask, tok % 20, bos=1, max_windows=8), x, x)
    np.testing.assert_allclose(np.asarray(a), np.asarray(c), atol=1e-6)
    # windows beyond max_windows are dropped
    d = m.apply(with_prompt(params, tok.at[3].set(5), mask, tok % 20, bos=1, max_windows=3), x, x)
    e = m.apply(with_prompt(params, tok, mask, tok % 20, bos=1, max_windows=3), x, x)
    np.testing.assert_allclose(np.asarray(d), np.asarray(e), atol=1e-6)


def test_meta_training_teaches_the_model_to_read_the_style_from_its_prompt():
    """Styles of the token corpus differ by pitch set: after meta-training, a query scores far better under
    its own style's prompt than under another style's, and better than with no prompt."""
    corpus = synth.token_corpus(n_styles=10, n_tunes=30, length=40)
    cfg = _cfg()
    cfg.meta.init, cfg.model.incontext.dim, cfg.optim.lr = "random", 32, 3e-3
    exp = experiments.build(cfg, corpus)
    algo, tx = exp.algorithm("incontext"), exp.optimizer("incontext")
    state = init_state(algo, tx, exp.init_params())
    sample = exp.train_sampler("incontext")
    step = jax.jit(lambda s, t, k: outer_step(algo, tx, s, t, k, algo.phase(0)))
    for i in range(300):  # (the prompt's gates open from zero: it takes a few hundred steps)
        state, _ = step(state, sample(i), jax.random.PRNGKey(i))
    # new draws of the training styles' tunes (unseen styles' pitches were never predicted by the head)
    s = TaskSampler(corpus, corpus.styles_in("train"), shots=2, queries=2, length=cfg.data.length, pool="support/query")
    tasks = inputs.to_task(s.sample(np.random.default_rng(5), 32))
    nll = jax.vmap(lambda sup, q: algo.adapt(state.meta, sup, jax.random.PRNGKey(0), query=q).query_losses)
    own = nll(tasks.support, tasks.query)  # [tasks, 2]: entry 0 without a prompt, 1 with it
    other = nll(jax.tree.map(lambda x: jnp.roll(x, 1, axis=0), tasks.support), tasks.query)[:, 1]
    assert float(own[:, 1].mean()) < float(own[:, 0].mean()) - 0.1
    assert float(own[:, 1].mean()) < float(other.mean()) - 0.3


def test_incontext_needs_a_model_that_reads_a_prompt():
    cfg = _cfg()
    cfg.model.name = "lstm"
    with pytest.raises(MetamusicError, match="model.name='lstm'.*incontext.*prompt"):
        experiments.validate(cfg)


@pytest.mark.slow  # (training, evaluation with every baseline and generation of a tiny in-context run)
def test_incontext_run_trains_evaluates_and_generates(style_corpus, tmp_path):
    cfg = _cfg()
    cfg.eval.shots = (2,)
    cfg.eval.finetune_after = ("incontext",)
    cfg.baselines.oracle_from = ("joint",)
    workdir = str(tmp_path)
    exp = experiments.build(cfg, style_corpus)
    for name in exp.methods:
        train(exp, workdir, name)
    res = fewshot.evaluate(experiments.build(cfg, style_corpus), workdir)["methods"]["K=2"]
    assert {"incontext", "incontext+finetune", "joint"} <= set(res)
    assert all(np.all(np.isfinite(r["nll_nats"])) for r in res.values())
    out = generate(exp, workdir, style=style_corpus.styles_in("test")[0], shots=2,
                   out=os.path.join(workdir, "samples"), method="incontext")
    assert out and all(os.path.getsize(p) > 0 for p in out)
