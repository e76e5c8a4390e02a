"""Host-compatibility fixes for the defects listed in plugins/compat/README.md.

The pinned versions these fixes are verified on, and why each is pinned: docs/environment.md.
Each fix is a small named function, idempotent (returns False when already in force), whose
docstring names the upstream issue. An extension package calls :func:`apply_host_fixes`
with its host when it is imported, so users never call these by hand.
"""

from __future__ import annotations

from plugins.compat.checkpoints import allow_mmengine_checkpoints, allow_recbole_checkpoints
from plugins.compat.lavis import (
    isolate_lavis_decord_bridge,
    lavis_lookup,
    lavis_metric_sync_on_cpu,
)
from plugins.compat.lavis_albef import (
    albef_eval_uses_max_txt_len,
    albef_offline_from_config,
    albef_runs_without_a_queue,
    albef_runs_without_distillation,
    lavis_checkpoints_local_weights_only,
)
from plugins.compat.lavis_albef_pretrain import (
    albef_pretrain_offline_from_config,
    albef_pretrain_runs_without_a_queue,
    lavis_numpy2_inf_alias,
)
from plugins.compat.mmaction import name_videos_in_decode_errors, provide_missing_drn_module
from plugins.compat.mmengine_dist import mmengine_cpu_launcher
from plugins.compat.numpy2 import restore_numpy_aliases
from plugins.compat.recbole import (
    extend_recbole_model_lookup,
    recbole_cpu_distributed,
    recbole_leaves_anomaly_detection_off,
    recbole_pop_counts_every_interaction,
    recbole_race_free_ensure_dir,
    register_recbole_model,
    register_recbole_trainer,
)

# host -> fixes, in the order they must run (NumPy aliases before RecBole is imported)
HOST_FIXES = {
    "recbole": (
        restore_numpy_aliases,
        extend_recbole_model_lookup,
        allow_recbole_checkpoints,
        recbole_cpu_distributed,
        recbole_race_free_ensure_dir,
        recbole_leaves_anomaly_detection_off,
        recbole_pop_counts_every_interaction,
    ),
    "mmaction2": (
        provide_missing_drn_module,
        allow_mmengine_checkpoints,
        mmengine_cpu_launcher,
        name_videos_in_decode_errors,
    ),
    "salesforce-lavis": (
        isolate_lavis_decord_bridge,
        lavis_metric_sync_on_cpu,
        albef_offline_from_config,
        albef_pretrain_offline_from_config,
        lavis_numpy2_inf_alias,
        albef_pretrain_runs_without_a_queue,
        lavis_checkpoints_local_weights_only,
        albef_eval_uses_max_txt_len,
        albef_runs_without_distillation,
        albef_runs_without_a_queue,
    ),
}


def apply_host_fixes(host: str) -> dict[str, bool]:
    """Apply every fix ``host`` needs; returns ``{fix name: applied by this call}``."""
    try:
        fixes = HOST_FIXES[host]
    except KeyError:
        raise KeyError(f"unknown host {host!r}; known hosts: {sorted(HOST_FIXES)}") from None
    return {fix.__name__: fix() for fix in fixes}


__all__ = [
    "HOST_FIXES",
    "albef_eval_uses_max_txt_len",
    "albef_offline_from_config",
    "albef_pretrain_offline_from_config",
    "albef_pretrain_runs_without_a_queue",
    "albef_runs_without_a_queue",
    "albef_runs_without_distillation",
    "allow_mmengine_checkpoints",
    "allow_recbole_checkpoints",
    "apply_host_fixes",
    "extend_recbole_model_lookup",
    "isolate_lavis_decord_bridge",
    "lavis_checkpoints_local_weights_only",
    "lavis_lookup",
    "lavis_metric_sync_on_cpu",
    "lavis_numpy2_inf_alias",
    "mmengine_cpu_launcher",
    "name_videos_in_decode_errors",
    "provide_missing_drn_module",
    "recbole_cpu_distributed",
    "recbole_leaves_anomaly_detection_off",
    "recbole_pop_counts_every_interaction",
    "recbole_race_free_ensure_dir",
    "register_recbole_model",
    "register_recbole_trainer",
    "restore_numpy_aliases",
]
