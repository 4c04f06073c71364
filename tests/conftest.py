
import pytest


@pytest.fixture(scope="session")
def style_corpus(tmp_path_factory):
    """A small user corpus (4 synthetic styles x 12 tunes), ingested once for the session."""
    import synth
    from metamusic.data import SplitConfig, load_corpus

    root = synth.make_style_corpus(str(tmp_path_factory.mktemp("corpus")), n_tunes=12)
    cache_dir = str(tmp_path_factory.mktemp("cache"))
    c = load_corpus(root, cache_dir=cache_dir, workers=1, progress=False,
                    split=SplitConfig(min_tunes=4, val_fraction=0.25, test_fraction=0.25))
    return c
