"""Extension is one file: a new algorithm and a new melody model defined here, registered, then trained,
evaluated and sampled on the tiny config without editing any file of the package (the README's
"Extending" section walks through exactly this)."""

import json
import os

import flax.linen as nn
import jax
import ml_collections
import note_seq
import numpy as np
import pytest

import metamusic as mm
from metamusic.errors import MetamusicError
from metamusic.experiments.methods import adapter
from metamusic.generate import support_for
from metamusic.meta import maml, registry
from metamusic.models import MODELS, register_model


# -- a new algorithm: first-order ANIL, composed from the MAML family (head only, inner gradients constant)
def make_foanil(loss_fn, inner, hooks, **options):
    return maml.make(loss_fn, inner, name="foanil", first_order=True, adapt_mask=hooks.head_mask, **options)


FOANIL = registry.Entry(make_foanil, needs=("head_mask",), per_task_weights=False)


# -- a new melody model: a GRU language model (fields the melody experiment passes, then its own)
class GRULM(nn.Module):
    vocab_size: int
    bar_positions: int = 0  # bar-position codes (data.bar_position), 0: none
    context_dim: int = 0  # a style context vector (CAVIA, amortized); unused here
    context_output: bool = False
    hidden: int = 16  # set from the config section model.gru

    @nn.compact
    def __call__(self, tokens, positions=None):
        x = nn.Embed(self.vocab_size, self.hidden)(tokens)
        if self.bar_positions and positions is not None:
            x = x + nn.Embed(self.bar_positions, self.hidden)(positions)
        x = nn.RNN(nn.GRUCell(self.hidden))(x)
        return nn.Dense(self.vocab_size, name="head")(x)


@pytest.fixture()
def plugins():
    registry.register("foanil", FOANIL)
    register_model("gru", GRULM)
    yield
    registry.ALGORITHMS.pop("foanil")
    MODELS.pop("gru")


def test_registered_algorithm_and_model_train_evaluate_and_generate(plugins, style_corpus, tmp_path):
    cfg = mm.config("maml_tiny", meta__algorithm="foanil", eval__shots=(2,))
    cfg.model.name = "gru"
    cfg.model.gru = ml_collections.ConfigDict({"hidden": 12})
    exp = mm.build(cfg, style_corpus)
    assert exp.methods == ("joint", "foanil")  # meta.init=joint: it starts from the joint model
    workdir = str(tmp_path / "run")
    states = mm.fit(exp, workdir)
    params = states["foanil"].meta["params"]["params"]
    assert params["head"]["kernel"].shape == (12, style_corpus.enc.vocab_size) and any("GRUCell" in str(k) or "RNN" in str(k) for k in params)
    rows = [json.loads(line) for line in open(os.path.join(workdir, "foanil", "metrics.jsonl"))]
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r) and any("loss" in r for r in rows)

    res = mm.evaluate(exp, workdir)["methods"]["K=2"]
    assert {"foanil", "joint", "finetune", "oracle"} <= set(res)
    curve = np.array(res["foanil"]["nll_nats"])
    assert len(curve) == cfg.eval.steps + 1 and np.all(np.isfinite(curve))
    assert curve[-1] != curve[0]  # the inner loop moves the head

    # its adaptation moves the head and nothing else (the entry's head mask)
    sup = support_for("reels", style_corpus, 2, cfg.data.length, np.random.default_rng(0))
    a = adapter(exp, workdir, "foanil")
    adapted = a.adapt(tuple(jax.numpy.asarray(x) for x in sup), jax.random.PRNGKey(0)).params["params"]
    trained = a.meta["params"]["params"]
    for path, leaf in jax.tree_util.tree_leaves_with_path(adapted):
        before = trained
        for k in path:
            before = before[k.key]
        moved = float(np.abs(np.asarray(leaf) - np.asarray(before)).max())
        assert (moved > 0) == (path[0].key == "head"), (path, moved)

    files = [os.path.join(workdir, "..", "tune.mid")]
    import synth

    synth.write_midi(files[0], seed=4)
    out = mm.sample(exp, mm.adapt(exp, workdir, "foanil", files, style="mine"), out=str(tmp_path / "samples"))
    assert len(out) == cfg.generate.num
    for p in out:
        notes = note_seq.midi_file_to_note_sequence(p).notes
        assert len(notes) > 0 and all(cfg.data.min_note <= n.pitch < cfg.data.max_note for n in notes)
    # one path given as a string is that file (it was read as its characters, "/" among them: the whole disk)
    one = mm.adapt(exp, workdir, "foanil", files[0])
    assert np.array_equal(one.support[0], mm.adapt(exp, workdir, "foanil", files).support[0])
    for shots in (0, -1, 1.5):  # (-1 had adapted to all tunes but one, 0 raised numpy's concatenate error)
        with pytest.raises(MetamusicError, match="give a whole number >= 1"):
            mm.adapt(exp, workdir, "foanil", files, shots=shots)
    # a path that does not exist is named as such (it was "unsupported extension ''", then a count of 0 tunes);
    # too few tunes name the API's argument, not the command line's flag
    with pytest.raises(MetamusicError, match="no such file or folder: .*no_such_dir"):
        mm.adapt(exp, workdir, "foanil", [files[0], str(tmp_path / "no_such_dir")])
    with pytest.raises(MetamusicError, match=r"fewer than the 2 shots asked \(shots=\)"):
        mm.adapt(exp, workdir, "foanil", files, shots=2)

    # fit refuses, as the command line does, a workdir trained with another model, before rewriting its config.json
    # (which had been overwritten first, losing the record of how the run was trained), and one in use
    recorded = open(os.path.join(workdir, "config.json")).read()
    other = mm.config("maml_tiny", meta__algorithm="foanil", eval__shots=(2,))
    other.model.name = "gru"
    other.model.gru = ml_collections.ConfigDict({"hidden": 8})
    with pytest.raises(MetamusicError, match="holds a run trained with model.gru.hidden=12"):
        mm.fit(mm.build(other, style_corpus), workdir)
    assert open(os.path.join(workdir, "config.json")).read() == recorded
    from metamusic.workdir import locked

    with locked(workdir), pytest.raises(MetamusicError, match="is in use by another run"):
        mm.fit(exp, workdir)


def test_registering_a_taken_name_or_an_unknown_hook_is_refused():
    with pytest.raises(MetamusicError, match="already registered"):
        registry.register("maml", FOANIL)
    with pytest.raises(MetamusicError, match="may need only"):
        registry.register("x", registry.Entry(make_foanil, needs=("optimizer",)))
    assert "x" not in registry.ALGORITHMS
