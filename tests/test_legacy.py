"""Runs saved by earlier versions load as current ones: old config fields move to their current paths once,
where the run is read (metamusic/legacy.py), and renamed folders are still found."""

import json
import os

import ml_collections

from metamusic import baselines, experiments, legacy


OLD = {"task": "melody", "pretrain_steps": 1200, "batch": 8,
       "meta": {"algorithm": "fomaml,cavia,mamlpp", "cavia_lr": 0.5, "mamlpp_msl_anneal_steps": 400,
                "mamlpp_first_order_steps": 100, "per_algorithm": {"cavia": {"steps": 600}}},
       "eval": {"finetune_lrs": [0.01, 0.1], "val_episodes": 12},
       "baselines": {}}


def test_old_config_fields_move_to_their_current_paths(tmp_path):
    with open(tmp_path / "config.json", "w") as f:
        json.dump(OLD, f)
    cfg = experiments.run_config(str(tmp_path), "melody")
    assert cfg.experiment == "melody" and cfg.meta.batch == 8 and cfg.baselines.joint_steps == 1200
    assert cfg.meta.per_algorithm.cavia.to_dict() == {"steps": 600, "context_lr": 0.5}
    assert cfg.meta.per_algorithm.mamlpp.to_dict() == {"msl_anneal_steps": 400, "first_order_steps": 100}
    assert list(cfg.baselines.finetune_lrs) == [0.01, 0.1] and cfg.eval.val_tasks == 12
    for old in ("cavia_lr", "mamlpp_msl_anneal_steps", "mamlpp_first_order_steps"):
        assert old not in cfg.meta  # read in one place only: no second way to set them
    assert "task" not in cfg and "pretrain_steps" not in cfg and "finetune_lrs" not in cfg.eval
    # settings the run predates get the value it was made with
    assert cfg.baselines.oracle_steps == legacy.ADDED[("melody", "baselines.oracle_steps")]


def test_a_field_already_at_its_current_path_wins():
    cfg = ml_collections.ConfigDict({"meta": {"cavia_lr": 0.5, "per_algorithm": {"cavia": {"context_lr": 2.0}}}})
    legacy.upgrade_config(cfg, "melody")
    assert cfg.meta.per_algorithm.cavia.context_lr == 2.0 and "cavia_lr" not in cfg.meta


def test_renamed_method_folder_is_found(tmp_path):
    os.makedirs(tmp_path / "pretrain")
    assert baselines.run_dir(str(tmp_path), baselines.JOINT) == str(tmp_path / "pretrain")
    os.makedirs(tmp_path / baselines.JOINT)
    assert baselines.run_dir(str(tmp_path), baselines.JOINT) == str(tmp_path / baselines.JOINT)


def test_a_run_made_before_data_melody_refuses_to_resume_with_another_melody(tmp_path):
    """A run saved before data.melody existed was made from the skyline: resuming it with the marked melody
    (other tokens) is refused before its config.json is rewritten; with the skyline it resumes."""
    import pytest

    from configs import relation as rel_cfg
    from metamusic.errors import MetamusicError
    from metamusic.workdir import check_resume

    cfg = rel_cfg.get_config()
    old = json.loads(cfg.to_json_best_effort())
    del old["data"]["melody"], old["model"]["inputs"]
    with open(tmp_path / "config.json", "w") as f:
        json.dump(old, f)
    os.makedirs(tmp_path / "protonet" / "checkpoints" / "400")
    check_resume(cfg, str(tmp_path))  # the same settings: it resumes
    cfg.data.melody = "marked"
    with pytest.raises(MetamusicError, match=r"data.melody='skyline' \(now 'marked'\)"):
        check_resume(cfg, str(tmp_path))
