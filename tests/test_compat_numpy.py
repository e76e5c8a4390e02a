"""Defect 1 (stack.md): RecBole's Config and ray use aliases NumPy 2 removed."""

import numpy as np
from conftest import run_python

from plugins.compat import restore_numpy_aliases


def test_recbole_and_ray_fail_under_numpy2_without_the_fix():
    result = run_python("""
        from recbole.config import Config
        Config('SASRec', 'ml-100k', config_dict=dict(epochs=1, train_neg_sample_args=None))
    """)
    assert result.returncode != 0
    assert "np.float_" in result.stderr
    result = run_python("from ray import tune")  # what recbole.quick_start imports
    assert result.returncode != 0 and "bool8" in result.stderr


def test_recbole_and_ray_import_once_the_extension_is_imported():
    result = run_python("""
        import recbole_ext
        from ray import tune
        from recbole.config import Config
        from recbole.quick_start import run_recbole, load_data_and_model
        Config('SASRec', 'ml-100k', config_dict=dict(epochs=1, train_neg_sample_args=None))
        print("imported")
    """)
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


def test_aliases_point_at_the_numpy1_types_and_the_fix_is_idempotent():
    restore_numpy_aliases()
    assert np.float_ is np.float64 and np.complex_ is np.complex128
    assert np.unicode_ is np.str_ and np.bool8 is np.bool_
    assert restore_numpy_aliases() is False
