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

    HistoryBuffer()  # registers the built-in statistics
    assert _history_buffer_getattr(HistoryBuffer, "mean") == HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match="refused getattr"):
        _history_buffer_getattr(os, "system")
