"""Defect 2 (stack.md): the mmaction2 1.2.0 wheel lacks localizers/drn."""

import pytest
from conftest import run_python


def test_mmaction_models_fail_to_import_without_the_fix():
    result = run_python("import mmaction.models")
    assert result.returncode != 0
    assert "No module named 'mmaction.models.localizers.drn'" in result.stderr


def test_mmaction_models_import_once_the_extension_is_imported():
    result = run_python("""
        import mmaction_ext
        from mmaction.models import Recognizer2D, ResNetTSM, TSMHead
        from mmaction.registry import MODELS
        assert MODELS.get('ResNetTSM') is ResNetTSM
        assert MODELS.get('DRN') is None, 'the stand-in must not enter the registry'
        print('ok')
    """)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_drn_stand_in_explains_itself_and_the_fix_is_idempotent():
    import mmaction_ext  # noqa: F401

    from mmaction.models.localizers import DRN

    from plugins.compat import provide_missing_drn_module

    with pytest.raises(ImportError, match="2714"):
        DRN()
    assert provide_missing_drn_module() is False
