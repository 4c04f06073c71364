"""Runs saved by earlier versions, upgraded once where they are loaded.

A run's config.json is read by `experiments.run_config`, which calls `upgrade_config`: every
field that was renamed or moved since is put at its current path (one table, `RENAMED`), and
settings that did not exist then get the value those runs were made with (`ADDED`), so the
rest of the code reads plain current fields. Folders renamed since are in `RENAMED_DIRS`.
"""

from __future__ import annotations

# Fields renamed or moved: old path -> current path (the family schema, the `baselines` block, the
# per-algorithm options).
RENAMED = {
    "task": "experiment",
    "batch": "meta.batch",
    "relation.methods": "meta.algorithm",
    "relation.aggregate": "model.aggregate",
    "eval.val_episodes": "eval.val_tasks",
    "meta.eval_steps": "eval.steps",
    "meta.eval_tasks": "eval.episodes",
    "eval.fidelity.scorer": "eval.scorer",
    "eval.fidelity.shots": "eval.fidelity_shots",
    "eval.fidelity.samples": "eval.samples",
    "eval.fidelity.distractors": "eval.distractors",
    "eval.fidelity.temperature": "eval.temperature",
    "pretrain_steps": "baselines.joint_steps",
    "optim.pretrain_lr": "baselines.joint_lr",
    "meta.pretrain_batch_factor": "baselines.joint_batch_factor",
    "eval.finetune_lrs": "baselines.finetune_lrs",
    "eval.finetune_steps": "baselines.finetune_steps",
    "eval.scratch_lrs": "baselines.scratch_lrs",
    "eval.scratch_steps": "baselines.scratch_steps",
    "eval.tune_episodes": "baselines.tune_episodes",
    "eval.finetune_scales": "baselines.finetune_scales",
    "meta.finetune_lrs": "baselines.finetune_lrs",
    "meta.cavia_lr": "meta.per_algorithm.cavia.context_lr",
    "meta.mamlpp_msl_anneal_steps": "meta.per_algorithm.mamlpp.msl_anneal_steps",
    "meta.mamlpp_first_order_steps": "meta.per_algorithm.mamlpp.first_order_steps",
}

# Settings added after runs were saved, with the value those runs were made with: (family, path) -> value.
ADDED = {
    ("melody", "baselines.oracle_lr"): 1e-3,
    ("melody", "baselines.oracle_steps"): 400,
    ("melody", "baselines.oracle_check_every"): 25,
    ("melody", "baselines.oracle_batch"): 32,
    ("melody", "baselines.oracle_holdout"): 0.2,
    ("melody", "baselines.oracle_from"): ("joint",),
    ("melody", "baselines.oracle_lrs"): (),
    ("melody", "baselines.oracle_patience"): 0,
    ("melody", "baselines.oracle_fine_every"): 0,
    ("melody", "baselines.oracle_fine_until"): 0,
    ("melody", "baselines.tune_per_k"): False,
    ("melody", "eval.fidelity_draws"): 1,
    ("melody", "data.melody"): "skyline",
    ("gan", "data.melody"): "skyline",
    ("classify", "data.melody"): "skyline",
    ("classify", "model.inputs"): "notes",
    ("classify", "model.relation_prior"): "none",
    ("classify", "meta.feature_loss"): 0.0,
    ("gan", "gan.r1_simplex"): False,
    ("gan", "gan.prefix"): 0,
    ("gan", "gan.estimator"): "gumbel",
    ("gan", "gan.critic_steps"): 1,
    ("gan", "gan.critic_pretrain"): 0,
    ("gan", "optim.critic_lr"): 0.0,
    ("gan", "optim.critic_clip"): 0.0,
    ("gan", "model.critic.dilated"): False,
    ("gan", "eval.two_sample_samples"): 0,
    ("gan", "eval.two_sample_steps"): 300,
    ("gan", "meta.g_inner_steps"): 0,
    ("gan", "meta.d_inner_steps"): 0,
}

# Method folders renamed: current name -> the folder runs saved before the rename use.
RENAMED_DIRS = {"joint": "pretrain"}


def upgrade_config(cfg, family: str) -> None:
    """Moves renamed fields of an older run's config (a ConfigDict, in place) to their current paths and
    fills the settings it predates. A field already at its current path wins over its old name."""
    import ml_collections

    for old, new in RENAMED.items():
        found, value = _pop(cfg, old)
        if found and _get(cfg, new) is None:
            _put(cfg, new, value, ml_collections.ConfigDict)
    if cfg.get("experiment", family) == family:
        for (fam, path), value in ADDED.items():
            section = path.split(".")[0]
            if fam == family and section in cfg and _get(cfg, path) is None:
                _put(cfg, path, value, ml_collections.ConfigDict)


def _get(cfg, path: str):
    node = cfg
    for part in path.split("."):
        if not hasattr(node, "keys") or part not in node:
            return None
        node = node[part]
    return node


def _pop(cfg, path: str):
    *parents, leaf = path.split(".")
    node = cfg
    for part in parents:
        if not hasattr(node, "keys") or part not in node:
            return False, None
        node = node[part]
    if not hasattr(node, "keys") or leaf not in node or hasattr(node[leaf], "keys"):
        return False, None
    value = node[leaf]
    del node[leaf]
    return True, value


def _put(cfg, path: str, value, section_type) -> None:
    *parents, leaf = path.split(".")
    node = cfg
    for part in parents:
        if part not in node:
            node[part] = section_type()
        node = node[part]
    node[leaf] = value
