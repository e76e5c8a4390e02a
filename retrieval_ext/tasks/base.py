"""What retrieval_ext's tasks share: models and datasets built through LAVIS's registry,
with a registry miss named (``lavis_lookup``) rather than LAVIS's ``None``."""

from __future__ import annotations

from lavis.tasks.retrieval import RetrievalTask

from plugins.compat import lavis_lookup


class RegistryRetrievalTask(RetrievalTask):
    """LAVIS's ``RetrievalTask`` whose model and dataset builders are looked up by name,
    each miss an error naming it; an empty ``datasets`` section is an error too."""

    def build_model(self, cfg):
        return lavis_lookup("model", cfg.model_cfg.arch).from_config(cfg.model_cfg)

    def build_datasets(self, cfg):
        if not cfg.datasets_cfg:
            raise ValueError("the config's 'datasets' section is empty")
        return {
            name: lavis_lookup("builder", name)(cfg.datasets_cfg[name]).build_datasets()
            for name in cfg.datasets_cfg
        }
