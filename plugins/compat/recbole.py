"""RecBole 1.2.1 has no model registry: ``get_model`` only searches its own modules."""

from __future__ import annotations

import functools
from pathlib import Path

_MODELS: dict[str, type] = {}
_DEFAULT_CONFIGS: dict[str, Path] = {}


def register_recbole_model(model_class: type | None = None, *, default_config=None):
    """Make ``model_class`` findable by name in RecBole (``run_recbole(model='Name')``).

    Usable as a class decorator, bare or as ``@register_recbole_model(default_config=path)``.
    ``default_config`` is the model's default-parameter yaml, which RecBole only looks for
    inside its own ``properties/model/``; it is loaded where RecBole loads a built-in
    model's. Raises ``ValueError`` when a different class already took the name (a RecBole
    built-in name included) or the yaml does not exist.
    """
    if model_class is None:
        return functools.partial(register_recbole_model, default_config=default_config)
    from recbole.model.abstract_recommender import AbstractRecommender

    if not (isinstance(model_class, type) and issubclass(model_class, AbstractRecommender)):
        raise TypeError(f"{model_class!r} is not a RecBole AbstractRecommender subclass")
    name = model_class.__name__
    if _is_recbole_builtin(name):
        raise ValueError(f"RecBole already has a built-in model named {name!r}")
    taken = _MODELS.get(name)
    if taken is not None and taken is not model_class:
        raise ValueError(f"RecBole model name {name!r} is already registered by {taken!r}")
    if default_config is not None:
        default_config = Path(default_config)
        if not default_config.is_file():
            raise ValueError(
                f"default_config of RecBole model {name!r}: {default_config} does not exist"
            )
        _DEFAULT_CONFIGS[name] = default_config
    _MODELS[name] = model_class
    return model_class


def _is_recbole_builtin(name: str) -> bool:
    import importlib

    # exlib_recommender is left out: importing it needs lightgbm and xgboost
    kinds = ("general", "context_aware", "sequential", "knowledge_aware")
    return any(
        hasattr(importlib.import_module(f"recbole.model.{kind}_recommender"), name)
        for kind in kinds
    )


def register_recbole_trainer(trainer_class: type) -> type:
    """Make ``trainer_class`` (named ``<Model>Trainer``) the trainer RecBole's ``get_trainer``
    picks for ``<Model>``: RecBole looks model-specific trainers up by that name in
    ``recbole.trainer``, where its own (e.g. ``NCLTrainer``) live. Usable as a decorator."""
    import recbole.trainer
    from recbole.trainer import AbstractTrainer

    name = trainer_class.__name__
    if not (issubclass(trainer_class, AbstractTrainer) and name.endswith("Trainer")):
        raise TypeError(f"{trainer_class!r} is not a RecBole trainer named '<Model>Trainer'")
    taken = getattr(recbole.trainer, name, None)
    if taken is not None and taken is not trainer_class:
        raise ValueError(f"RecBole trainer name {name!r} is already taken by {taken!r}")
    setattr(recbole.trainer, name, trainer_class)
    return trainer_class


def registered_recbole_models() -> list[type]:
    """Model classes registered through :func:`register_recbole_model`."""
    return list(_MODELS.values())


def extend_recbole_model_lookup() -> bool:
    """Let RecBole's name lookup find models registered with :func:`register_recbole_model`.

    Upstream: RUCAIBox/RecBole has no plugin registry; ``recbole.utils.get_model`` imports
    ``recbole.model.<kind>.<name.lower()>`` and fails for any other name, so
    ``run_recbole(model='X')``, ``Config(model='X')`` and ``load_data_and_model`` cannot
    find models defined outside RecBole (``Config(model=<class>)`` alone works); an unknown
    name fails with the unrelated "No module named 'lightgbm'". The lookup is extended in
    every module that imported ``get_model`` by name (registration refuses RecBole's own
    names, so built-ins are never shadowed), and an unknown name now fails with a
    ``ValueError`` that lists the registered models.

    Returns:
        True if applied by this call.
    """
    import recbole.config.configurator as configurator
    import recbole.quick_start.quick_start as quick_start
    import recbole.utils
    import recbole.utils.utils as utils

    if getattr(utils.get_model, "_plugzoo_registry", False):
        return False
    recbole_get_model = utils.get_model

    @functools.wraps(recbole_get_model)
    def get_model(model_name):
        if model_name in _MODELS:
            return _MODELS[model_name]
        try:
            return recbole_get_model(model_name)
        except ModuleNotFoundError as error:
            # RecBole probes exlib_recommender, which imports lightgbm/xgboost
            if error.name not in ("lightgbm", "xgboost"):
                raise
            raise ValueError(
                f"`model_name` [{model_name}] is neither a RecBole model nor one registered "
                f"with plugzoo (registered: {sorted(_MODELS) or 'none'})"
            ) from error

    get_model._plugzoo_registry = True
    for module in (utils, recbole.utils, configurator, quick_start):
        module.get_model = get_model

    load_builtin_defaults = configurator.Config._load_internal_config_dict

    @functools.wraps(load_builtin_defaults)
    def _load_internal_config_dict(self, model, model_class, dataset):
        load_builtin_defaults(self, model, model_class, dataset)
        if model in _DEFAULT_CONFIGS:
            self._update_internal_config_dict(str(_DEFAULT_CONFIGS[model]))
            # RecBole's order: overall < model < dataset yaml, so the dataset's wins again
            dataset_yaml = (
                Path(configurator.__file__).parent / f"../properties/dataset/{dataset}.yaml"
            )
            if dataset_yaml.is_file():
                self._update_internal_config_dict(str(dataset_yaml))

    configurator.Config._load_internal_config_dict = _load_internal_config_dict
    return True


def recbole_cpu_distributed() -> bool:
    """Let RecBole's multi-process training run on CPU machines with gloo (e.g. torchrun).

    Upstream: no RecBole issue tracks it; RecBole added distributed training in 1.1.1
    (RUCAIBox/RecBole#486) for GPUs only. ``Config._init_device`` always calls
    ``init_process_group(backend="nccl")`` and ``torch.cuda.set_device`` once ``local_rank``
    is in the config, and ``AbstractTrainer`` wraps the model with
    ``DistributedDataParallel(device_ids=[local_rank])``; both fail without CUDA. With CUDA
    absent this fix
    initialises gloo on the CPU (the process group is reused when the launcher already
    made one) and wraps the model with ``device_ids=None``. RecBole's gradient-hook trick,
    distributed samplers and metric all-gathers then run unchanged. It also gives every
    rank rank 0's best-model file name and makes the ranks wait for rank 0's save before
    loading it (without this, rank 1 read a half-written checkpoint in our 2-process test).
    Machines with CUDA keep RecBole's own NCCL path.

    Returns:
        True if applied by this call.
    """
    import torch
    from recbole.config import configurator
    from recbole.trainer import trainer as trainer_module

    if getattr(configurator.Config._init_device, "_plugzoo_cpu", False):
        return False
    init_on_cuda = configurator.Config._init_device

    @functools.wraps(init_on_cuda)
    def _init_device(self):
        settings = self.final_config_dict
        if "local_rank" not in settings or torch.cuda.is_available():
            return init_on_cuda(self)
        settings["gpu_id"] = ""
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(
                backend="gloo",
                rank=settings["local_rank"] + settings.get("offset", 0),
                world_size=settings["world_size"],
                init_method=f"tcp://{settings['ip']}:{settings['port']}",
            )
        settings["device"] = torch.device("cpu")
        settings["single_spec"] = False
        if settings["local_rank"] != 0:
            settings["state"] = "error"  # RecBole's way of quieting the other ranks
            settings["show_progress"] = False
            settings["verbose"] = False

    _init_device._plugzoo_cpu = True
    configurator.Config._init_device = _init_device

    wrap_on_cuda = trainer_module.AbstractTrainer.__init__

    @functools.wraps(wrap_on_cuda)
    def __init__(self, config, model):
        if config["single_spec"] or config["device"].type == "cuda":
            return wrap_on_cuda(self, config, model)
        self.config = config
        self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.distributed_model = torch.nn.parallel.DistributedDataParallel(self.model)

    trainer_module.AbstractTrainer.__init__ = __init__

    # Every rank names the best-model file after its own clock, only rank 0 writes it, and
    # the others may read it while it is being written: give all ranks rank 0's name, and
    # wait for rank 0 before loading the best model.
    init_trainer = trainer_module.Trainer.__init__

    @functools.wraps(init_trainer)
    def trainer_init(self, config, model):
        init_trainer(self, config, model)
        if not config["single_spec"] and config["device"].type == "cpu":
            name = [self.saved_model_file]
            torch.distributed.broadcast_object_list(name, src=0)
            self.saved_model_file = name[0]

    trainer_module.Trainer.__init__ = trainer_init
    evaluate = trainer_module.Trainer.evaluate

    @functools.wraps(evaluate)
    def evaluate_after_save(
        self, eval_data, load_best_model=True, model_file=None, show_progress=False
    ):
        if (
            not self.config["single_spec"]
            and self.config["device"].type == "cpu"
            and load_best_model
        ):
            torch.distributed.barrier()
        return evaluate(self, eval_data, load_best_model, model_file, show_progress)

    trainer_module.Trainer.evaluate = evaluate_after_save
    return True


def recbole_race_free_ensure_dir() -> bool:
    """Let several RecBole processes create the same folder at the same moment.

    Upstream: no RecBole issue tracks it. ``recbole.utils.ensure_dir`` checks
    ``os.path.exists`` and then calls ``os.makedirs``. Ranks started together (torchrun, or
    RecBole's own ``run_recboles``) all create ``./log/<model>`` and the checkpoint folder;
    when two see the folder missing, the slower ``makedirs`` raises FileExistsError and that
    rank dies (our 2-process CI test failed this way on a fresh working directory). The fix
    is ``os.makedirs(..., exist_ok=True)``, put in every module that imported the name.

    Returns:
        True if applied by this call.
    """
    import os

    import recbole.data.dataset.dataset
    import recbole.data.utils
    import recbole.trainer.trainer
    import recbole.utils
    import recbole.utils.logger
    import recbole.utils.utils

    if getattr(recbole.utils.utils.ensure_dir, "_plugzoo_race_free", False):
        return False
    check_then_create = recbole.utils.utils.ensure_dir

    @functools.wraps(check_then_create)
    def ensure_dir(dir_path):
        os.makedirs(dir_path, exist_ok=True)

    ensure_dir._plugzoo_race_free = True
    for module in (
        recbole.utils.utils,
        recbole.utils,
        recbole.utils.logger,
        recbole.trainer.trainer,
        recbole.data.utils,
        recbole.data.dataset.dataset,
    ):
        if getattr(module, "ensure_dir", None) is check_then_create:
            module.ensure_dir = ensure_dir
    return True


def recbole_leaves_anomaly_detection_off() -> bool:
    """Undo the autograd anomaly detection that importing RecBole's models turns on.

    Upstream: ``recbole/model/sequential_recommender/sine.py`` (RecBole 1.2.1) calls
    ``torch.autograd.set_detect_anomaly(True)`` at import, and ``recbole.model`` imports it
    with every other model, so any RecBole run (``run_recbole``, ``get_model``) trains with
    anomaly detection on: every backward pass records and checks its graph, which slows a
    SASRec training step (30 steps of batch 256 on ML-100K, 1 thread: 4.79 s of thread CPU
    time with it against 2.85 s without, 1.68x). The fix imports the module once and sets the
    mode back to what it was before; a user who wants anomaly detection turns it on after
    importing RecBole.

    Returns:
        True if applied by this call.
    """
    import sys

    import torch

    name = "recbole.model.sequential_recommender.sine"
    if getattr(torch.autograd, "_plugzoo_sine_import_undone", False):
        return False
    # already imported: its import turned the mode on, whatever it was before
    before = False if name in sys.modules else torch.is_anomaly_enabled()
    import recbole.model.sequential_recommender.sine  # noqa: F401

    torch.autograd.set_detect_anomaly(before)
    torch.autograd._plugzoo_sine_import_undone = True
    return True


def recbole_pop_counts_every_interaction() -> bool:
    """Make RecBole's ``Pop`` count each training interaction once, whatever the batch.

    Upstream: RUCAIBox/RecBole#2198 and #1844 (a fix is proposed in PR #2199; RecBole 1.2.1
    has the defect). ``Pop.calculate_loss`` adds 1 with ``item_cnt[item] = item_cnt[item] +
    1``; an item that occurs several times in one batch gets one increment, so the counts
    become the number of batches an item occurs in, capped at the number of batches, and the
    popular items tie. The same line also counts a pointwise loader's sampled negatives
    (label 0, on by default) as occurrences. The fix accumulates with ``index_add_`` and,
    when the batch carries RecBole's label field, counts only its positive rows.

    Returns:
        True if applied by this call.
    """
    import torch
    from recbole.model.general_recommender.pop import Pop

    if getattr(Pop.calculate_loss, "_plugzoo_counts_every_interaction", False):
        return False

    counts_batches = Pop.__init__

    @functools.wraps(counts_batches)
    def __init__(self, config, dataset):
        counts_batches(self, config, dataset)
        self.LABEL = config["LABEL_FIELD"]

    def calculate_loss(self, interaction):
        item = interaction[self.ITEM_ID]
        if self.LABEL in interaction:  # sampled negatives are not occurrences
            item = item[interaction[self.LABEL] > 0]
        self.item_cnt.index_add_(0, item, torch.ones_like(item)[:, None])
        self.max_cnt = torch.max(self.item_cnt, dim=0)[0]
        return torch.nn.Parameter(torch.zeros(1)).to(self.device)

    calculate_loss._plugzoo_counts_every_interaction = True
    Pop.__init__ = __init__
    Pop.calculate_loss = calculate_loss
    return True
