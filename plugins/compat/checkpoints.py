"""torch >= 2.6 loads checkpoints with ``weights_only=True``; RecBole and mmengine predate it.

Neither fix switches the check off. Each host's checkpoints are loaded with
``weights_only=True`` and an allow-list of the plain classes that host's own checkpoints
contain (enums, config holders, NumPy scalars), inside ``torch.serialization.safe_globals``
so the allow-list is only in force during that host's load (process-wide while it lasts).
A pickle that calls anything else (``os.system``, ``eval``...) is still refused, and an
allow-listed class whose constructor would run code (RecBole's Config evaluates strings)
is bound to a stand-in that refuses to be called.

:func:`load_checkpoint` is the one ``torch.load`` of plugzoo's own load paths: a file
refused as unsafe, or one that cannot be read (truncated, not a checkpoint), stops with a
:class:`CheckpointLoadError` naming the file, the config key or argument that gave it, and
what to do.
"""

from __future__ import annotations

import copyreg
import functools
import importlib
import os
import pickle
import types
from pathlib import Path

import numpy as np
import torch

_NUMPY_GLOBALS = [
    np.dtype,
    np._core.multiarray.scalar,
    *(getattr(np.dtypes, name) for name in np.dtypes.__all__),
]


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that could not be loaded: the message names the file, the config
    key (or command-line argument) that gave it, the problem and what to do."""

    ADVICE = (
        "The file is truncated (an interrupted save, copy or download) or is not a PyTorch "
        "checkpoint: save or copy it again, or point the key at the right file."
    )

    def __init__(self, path, problem: str, key: str | None = None):
        self.path, self.problem, self.key = str(path), problem, key
        where = f"{key} = {path}" if key else str(path)
        super().__init__(f"{where}: {problem}\n{self.ADVICE}")

    def __reduce__(self):  # rebuilt from its parts (exceptions cross process boundaries)
        return type(self), (self.path, self.problem, self.key)

    def for_key(self, key: str) -> CheckpointLoadError:
        """The same error, named by the key a caller knows the file by."""
        return type(self)(self.path, self.problem, key)


class UnsafeCheckpointError(CheckpointLoadError, pickle.UnpicklingError):
    """A checkpoint needs globals outside the allow-list of torch's weights_only loader."""

    ADVICE = (
        "plugzoo never turns torch's weights_only check off. If you wrote this file yourself "
        "and trust it, load it with torch.load(path, weights_only=False) and re-save the "
        "parts you need (e.g. torch.save({'model': state_dict}, path))."
    )


def _raise_with_context(path, host: str, error: Exception):
    raise UnsafeCheckpointError(
        path, f"refused to load as a {host} checkpoint with weights_only=True: {error}"
    ) from error


def _unpickler_reason(error: Exception) -> str:
    """What torch's weights_only message says it refused (its "WeightsUnpickler error:"
    detail, which may sit on the next line, or the line naming a GLOBAL)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    marker = "WeightsUnpickler error:"
    for i, line in enumerate(lines):
        if marker in line:
            detail = line.split(marker, 1)[1].strip()
            return detail or (lines[i + 1] if i + 1 < len(lines) else marker)
    for line in lines:
        if "GLOBAL" in line:
            return line
    return lines[0] if lines else type(error).__name__


def load_checkpoint(path, key: str | None = None, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` of the local file that config key (or
    argument) ``key`` names.

    Raises:
        FileNotFoundError: no such file (naming ``key``).
        UnsafeCheckpointError: torch's weights_only unpickler refused a global it asks
            for: it holds Python objects beyond tensors and plain containers (a class or
            function that could run code).
        CheckpointLoadError: it cannot be read as a checkpoint (a truncated zip archive, an
            empty file, another format).
    """
    if not isinstance(path, (str, os.PathLike)):  # an open file: torch's own errors
        return torch.load(path, map_location=map_location, weights_only=True)
    path = Path(path).expanduser()
    if not path.is_file():
        where = f"{key}: " if key else ""
        raise FileNotFoundError(f"{where}checkpoint not found: {path} (local files only)")
    try:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickler_reason(error)
        if "global" in reason.lower():  # it asks for a class or function: refused
            problem = f"refused by torch's weights_only loader: {reason}"
            raise UnsafeCheckpointError(path, problem, key) from error
        problem = f"not a readable PyTorch checkpoint (weights_only loader: {reason})"
        raise CheckpointLoadError(path, problem, key) from error
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        problem = f"not a readable PyTorch checkpoint ({type(error).__name__}: {reason})"
        raise CheckpointLoadError(path, problem, key) from error


# --- RecBole ---------------------------------------------------------------------------


def _recbole_model_classes(path) -> list[type]:
    """Model classes named by a RecBole checkpoint (its Config keeps ``model_class``).

    Only names that resolve to RecBole models (``recbole.model.*`` or models registered
    with plugzoo) are imported; any other global, or one that does not import, stays
    refused by the unpickler.
    """
    from recbole.model.abstract_recommender import AbstractRecommender

    from plugins.compat.recbole import registered_recbole_models

    registered = {f"{c.__module__}.{c.__qualname__}": c for c in registered_recbole_models()}
    classes = []
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: let torch.load report it
        return classes
    for name in names:
        if name in registered:
            classes.append(registered[name])
        elif name.startswith("recbole.model."):
            module_name, _, attr = name.rpartition(".")
            try:
                obj = getattr(importlib.import_module(module_name), attr, None)
            except ImportError:
                continue
            if isinstance(obj, type) and issubclass(obj, AbstractRecommender):
                classes.append(obj)
    return classes


def _unpickled_config_class():
    """RecBole's ``Config`` as the unpickler may rebuild it: by NEWOBJ + BUILD only.

    ``Config.__init__`` evaluates the strings of its ``config_dict``, and the weights_only
    unpickler calls any allow-listed global a pickle asks it to call. So the name
    ``recbole.config.configurator.Config`` is bound to this subclass, whose constructor
    refuses: RecBole's own checkpoints never call it (they rebuild the object from its
    ``__dict__``), a crafted one that does is refused. It pickles as the real Config.
    """
    from recbole.config.configurator import Config

    class ConfigFromCheckpoint(Config):
        def __init__(self, *args, **kwargs):
            raise pickle.UnpicklingError(
                "refused to call recbole Config(...) while unpickling: its constructor "
                "evaluates strings, and RecBole checkpoints never call it"
            )

        def __reduce_ex__(self, protocol):
            return (copyreg.__newobj__, (Config,), self.__dict__)

    return ConfigFromCheckpoint


_config_from_checkpoint = functools.cache(_unpickled_config_class)


def recbole_safe_globals(path) -> list:
    """The allow-list for one RecBole checkpoint file."""
    import yaml
    from recbole.utils.enum_type import EvaluatorType, InputType, ModelType

    return [
        (_config_from_checkpoint(), "recbole.config.configurator.Config"),
        InputType,
        ModelType,
        EvaluatorType,
        yaml.loader.FullLoader,  # Config keeps its YAML loader class
        *_NUMPY_GLOBALS,
        *_recbole_model_classes(path),
    ]


def load_recbole_checkpoint(path, map_location=None):
    """``torch.load`` a RecBole checkpoint with weights_only=True and RecBole's allow-list."""
    try:
        with torch.serialization.safe_globals(recbole_safe_globals(path)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        _raise_with_context(path, "RecBole", error)


class _TorchForRecBoleTrainer(types.ModuleType):
    """``torch`` as seen by ``recbole.trainer.trainer`` only: safe load, loadable save."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **kwargs):
        if kwargs.get("weights_only") is False:
            raise ValueError("plugzoo: RecBole checkpoints are loaded with weights_only=True")
        return load_recbole_checkpoint(f, map_location=map_location)

    @staticmethod
    def save(obj, f, pickle_protocol=None, **kwargs):
        # RecBole saves with pickle_protocol=4, whose FRAME opcode the weights_only
        # unpickler rejects; torch's default protocol keeps the file loadable.
        return torch.save(obj, f, **kwargs)


def allow_recbole_checkpoints() -> bool:
    """Let RecBole resume and reload its best model under torch >= 2.6, safely.

    Upstream: RUCAIBox/RecBole#2212 (the torch 2.6 ``weights_only`` default breaks RecBole's
    ``torch.load`` calls; here ``evaluate(load_best_model=True)``, ``resume_checkpoint`` and
    ``load_data_and_model`` fail with "Weights only load failed"). Two causes: the checkpoint
    holds RecBole's ``Config`` (enums, YAML loader, NumPy scalars, the model class), and
    ``Trainer._save_checkpoint`` pickles with protocol 4, which the weights_only unpickler
    cannot read at all. The fix gives ``recbole.trainer.trainer`` (only that module) a
    ``torch`` whose ``save`` uses torch's default protocol and whose ``load`` uses
    :func:`load_recbole_checkpoint`; ``load_data_and_model`` loads inside the same
    allow-list.

    Returns:
        True if applied by this call.
    """
    from recbole.quick_start import quick_start
    from recbole.trainer import trainer

    if isinstance(trainer.torch, _TorchForRecBoleTrainer):
        return False
    trainer.torch = _TorchForRecBoleTrainer()

    original = quick_start.load_data_and_model

    @functools.wraps(original)
    def load_data_and_model(model_file):
        try:
            with torch.serialization.safe_globals(recbole_safe_globals(model_file)):
                return original(model_file)
        except pickle.UnpicklingError as error:
            _raise_with_context(model_file, "RecBole", error)

    quick_start.load_data_and_model = load_data_and_model
    import recbole.quick_start as quick_start_package

    quick_start_package.load_data_and_model = load_data_and_model
    return True


# --- mmengine ---------------------------------------------------------------------------


def _history_buffer_getattr(obj, name):
    """Stands in for ``builtins.getattr`` while unpickling mmengine checkpoints.

    A pickled HistoryBuffer refers to its statistics methods as
    ``getattr(HistoryBuffer, 'min')``; only those lookups are honoured.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    # the built-in statistics are registered lazily, by the first HistoryBuffer() call
    allowed = {"min", "max", "current", "mean"} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f"refused getattr({obj!r}, {name!r}): only HistoryBuffer statistics methods are allowed"
    )


def mmengine_safe_globals() -> list:
    """The allow-list for mmengine checkpoints (message hub history, NumPy values)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    return [
        HistoryBuffer,
        (_history_buffer_getattr, "builtins.getattr"),
        np.ndarray,
        np._core.multiarray._reconstruct,
        *_NUMPY_GLOBALS,
    ]


def allow_mmengine_checkpoints() -> bool:
    """Let mmengine resume and ``load_checkpoint`` local files under torch >= 2.6, safely.

    Upstream: open-mmlab/mmengine#1655 and PR #1650 (resume and ``load_checkpoint`` fail:
    "Unsupported global: mmengine.logging.history_buffer.HistoryBuffer"; the PR turns the
    check off, which plugzoo does not). Replaces mmengine's loader for local
    paths (the ``''`` scheme of ``CheckpointLoader``) with one that loads with
    weights_only=True inside mmengine's allow-list.

    Returns:
        True if applied by this call.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    current = CheckpointLoader._schemes[""]
    if getattr(current, "_plugzoo_safe", False):
        return False

    def load_from_local(filename, map_location):
        import os.path as osp

        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f"{filename} can not be found.")
        try:
            with torch.serialization.safe_globals(mmengine_safe_globals()):
                return torch.load(filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            _raise_with_context(filename, "mmengine", error)

    load_from_local._plugzoo_safe = True
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local, force=True)
    return True
