"""torch's weights_only check stays on: a malicious pickle is refused after every extension
is imported, through plain torch.load and through each host's checkpoint loader."""

import os

import pytest
import torch
from conftest import run_python


class _RunsCode:
    """Pickles as a call to os.system: what a hostile checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": _RunsCode(marker)}, path)
    return path, marker


def test_no_global_switch_is_used():
    import mmaction_ext  # noqa: F401
    import recbole_ext  # noqa: F401
    import retrieval_ext  # noqa: F401

    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ


def test_malicious_pickle_refused_by_torch_load_after_all_extensions(malicious_checkpoint):
    path, marker = malicious_checkpoint
    result = run_python(f"""
        import mmaction_ext, recbole_ext, retrieval_ext
        import pickle, torch
        try:
            torch.load({str(path)!r})
        except pickle.UnpicklingError as error:
            print('refused:', str(error).splitlines()[0])
    """)
    assert result.returncode == 0, result.stderr
    assert "refused: Weights only load failed" in result.stdout
    assert not marker.exists()


def test_malicious_pickle_refused_by_the_host_loaders(malicious_checkpoint):
    import mmaction_ext  # noqa: F401
    import recbole_ext  # noqa: F401

    from mmengine.runner.checkpoint import _load_checkpoint

    from plugins.compat.checkpoints import UnsafeCheckpointError, load_recbole_checkpoint

    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError, match="evil.pth.*RecBole"):
        load_recbole_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError, match="evil.pth.*mmengine"):
        _load_checkpoint(str(path), map_location="cpu")
    assert not marker.exists()


def test_recbole_loader_refuses_weights_only_false():
    import recbole_ext  # noqa: F401

    from recbole.trainer import trainer

    with pytest.raises(ValueError, match="weights_only=True"):
        trainer.torch.load("any.pth", weights_only=False)


def test_history_buffer_getattr_only_returns_statistics_methods():
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer

    from plugins.compat.checkpoints import _history_buffer_getattr

    # allowed even before any HistoryBuffer() registered the built-in statistics
    assert _history_buffer_getattr(HistoryBuffer, "mean") == HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match="refused getattr"):
        _history_buffer_getattr(os, "system")


class _CallsRecBoleConfig:
    """Pickles as Config(None, None, None, {...}): Config.__init__ evals config_dict strings."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from recbole.config.configurator import Config

        payload = {"x": f"__import__('os').system('touch {self.marker}')"}
        return (Config, (None, None, None, payload))


def test_recbole_config_constructor_cannot_be_called_from_a_checkpoint(tmp_path):
    import recbole_ext  # noqa: F401

    from recbole.quick_start import load_data_and_model

    from plugins.compat.checkpoints import UnsafeCheckpointError, load_recbole_checkpoint

    marker = tmp_path / "pwned"
    path = tmp_path / "evil_config.pth"
    torch.save({"config": _CallsRecBoleConfig(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match="refused to call recbole Config"):
        load_recbole_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError, match="refused to call recbole Config"):
        load_data_and_model(str(path))
    assert not marker.exists()


class _GetattrGadget:
    """Pickles as getattr(HistoryBuffer, '__init__'): not a statistics method."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer

        return (getattr, (HistoryBuffer, "__init__"))


def test_mmengine_getattr_stand_in_refuses_other_attributes_in_a_real_pickle(tmp_path):
    import mmaction_ext  # noqa: F401

    from mmengine.runner.checkpoint import _load_checkpoint

    from plugins.compat.checkpoints import UnsafeCheckpointError

    path = tmp_path / "getattr.pth"
    torch.save({"meta": _GetattrGadget()}, path)
    with pytest.raises(UnsafeCheckpointError, match="refused getattr"):
        _load_checkpoint(str(path), map_location="cpu")


def test_importing_the_extensions_leaves_torchs_global_allow_list_alone():
    result = run_python("""
        import torch
        before = list(torch.serialization.get_safe_globals())
        import mmaction_ext, recbole_ext, retrieval_ext
        added = [g for g in torch.serialization.get_safe_globals() if g not in before]
        # torch registers its own DTensor classes when torch.distributed.tensor is imported
        foreign = [g for g in added if not getattr(g, '__module__', '').startswith('torch.')]
        assert not foreign, f'allow-list widened by: {foreign}'
        print('unchanged')
    """)
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout
