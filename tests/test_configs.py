"""Every shipped config passes its family's validation (a typo in a config fails here, not mid-run)."""

import importlib
import os

import pytest

from metamusic import experiments

CONFIGS = sorted(f[:-3] for f in os.listdir(os.path.join(os.path.dirname(__file__), "..", "configs"))
                 if f.endswith(".py") and not f.startswith("_"))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates(name):
    cfg = importlib.import_module(f"configs.{name}").get_config()
    experiments.validate(cfg)  # raises MetamusicError naming the field
    assert cfg.experiment in experiments.EXPERIMENTS


def test_a_config_name_not_shipped_is_answered_with_every_shipped_name():
    import metamusic as mm
    from metamusic.errors import MetamusicError

    assert {"maml", "relation", "gan", "incontext", "maml_gpu"} <= set(CONFIGS)
    with pytest.raises(MetamusicError, match=r"\(" + ", ".join(CONFIGS) + r"\) or a path"):
        mm.config("maml_tny")
