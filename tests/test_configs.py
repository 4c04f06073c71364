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
