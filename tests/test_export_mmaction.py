"""STH exported into MMAction2 1.2.0 by both routes: the community project ``projects/sth/``
and the core package (``mmaction/models/...``, ``configs/recognition/sth/``, ``tests/``).

The fast tests check the unformatted trees against the pinned sdist. The slow ones format
with MMAction2's pinned pre-commit tools and lint with them, and run each tree the way
MMAction2 runs code, in a fresh interpreter where plugzoo cannot be imported
(``plugins/export/shim.py``, test-only: it also stands in for MMAction2's missing DRN
module): the project from its folder (``custom_imports='models'``), the core tree as the
host package itself, its exported unit tests under pytest, and one ``mim train`` iteration
of an exported config on generated mp4 clips; both compare with plugzoo's STH.
"""

import ast
import importlib.abc
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import SHIM, SHIM_CONTROL, exported_env, run_checked, write_tiny_video_dataset

from plugins.cli import main
from plugins.export import export_paper
from plugins.export.core import PLUGZOO_PACKAGES, ExportRefused, newer_syntax
from plugins.export.mmaction import (
    CONFIGS,
    CORE_CONFIGS,
    CORE_SOURCES,
    HEADER,
    PROJECT,
    SOURCES,
    export_sth,
    fit_columns,
    mmaction_style,
    single_quotes,
    style_problems,
)
from plugins.export.sources import (
    formatter_env,
    formatter_names,
    install_formatter,
)
from plugins.paths import REPO_ROOT

MIM = Path(sys.executable).parent / "mim"


def test_single_quotes_like_mmaction2s_hook():
    source = 'a = "x"\nb = "it\'s"\nc = f"{a}"\nd = """doc"""\ne = r"\\d"\n'
    assert (
        single_quotes(source)
        == 'a = \'x\'\nb = "it\'s"\nc = f\'{a}\'\nd = """doc"""\ne = r\'\\d\'\n'
    )


LONG_SOURCE = '''def check(value, limit):
    """Refuse ``value`` above ``limit``: the words of this docstring run on well past the
    seventy-nine columns MMAction2 allows.

    Args:
        value (int): A value that is checked here, with a description that runs on past it.
        limit (int): Short.
    """
    # a comment that runs on far past the seventy-nine columns MMAction2's flake8 allows
    if value > limit:
        raise ValueError(f"value {value} is above the limit {limit}; pass a value at or below it")
    message = "a plain string literal that runs on far past the seventy-nine columns allowed"
    return message
'''


def test_fit_columns_shortens_what_yapf_cannot_and_keeps_the_code():
    fitted = fit_columns(LONG_SOURCE)
    assert max(len(line) for line in fitted.splitlines()) <= 79, fitted
    namespace = {}
    exec(compile(fitted, "fitted", "exec"), namespace)  # noqa: S102  (our own source)
    assert namespace["check"](1, 2).startswith("a plain string literal that runs")
    with pytest.raises(ValueError, match="value 3 is above the limit 2; pass a value at or"):
        namespace["check"](3, 2)
    assert "        limit (int): Short.\n" in fitted  # an item that fits stays as it is
    assert "        value (int): A value" in fitted  # an argument keeps its own line
    short = "def f():\n    return 1\n"
    assert fit_columns(short) == short


@pytest.fixture(scope="module")
def project_tree(mmaction_src):
    return export_sth(mmaction_src, route="project", formatted=False)


@pytest.fixture(scope="module")
def core_tree(mmaction_src):
    return export_sth(mmaction_src, route="core", formatted=False)


def _python_files(tree):
    return {k: v for k, v in tree.files.items() if k.endswith(".py")}


def test_sth_project_layout_headers_and_plugzoo_free_code(project_tree):
    files = project_tree.files
    expected = {*SOURCES.values(), f"{PROJECT}/models/__init__.py", f"{PROJECT}/README.md"}
    expected |= {f"{PROJECT}/configs/{name}" for name in CONFIGS}
    assert set(files) == expected
    readme = files[f"{PROJECT}/README.md"]
    for milestone in ("Milestone 1", "Milestone 2", "Milestone 3", "## Citation", "## Results"):
        assert milestone in readme


def test_sth_core_layout_registration_and_what_an_sdist_lacks(core_tree, mmaction_src):
    files = core_tree.files
    assert set(CORE_SOURCES.values()) <= set(files)
    assert {f"{CORE_CONFIGS}/{name}" for name in CONFIGS} <= set(files)
    for relative in ("README.md", "metafile.yml"):
        assert f"{CORE_CONFIGS}/{relative}" in files
    for relative in (
        "tests/models/common/test_sth_conv.py",
        "tests/models/backbones/test_resnet_sth.py",
        "tests/models/backbones/test_mobilenet_v2_sth.py",
        "tests/models/recognizers/test_recognizer2d_sth.py",
    ):
        assert relative in files
    # registration: the host's own __init__ files, each with the new names added
    common = files["mmaction/models/common/__init__.py"]
    assert "from .sth_conv import STHConv, STHDepthwiseConv\n" in common
    host_common = (mmaction_src / "mmaction/models/common/__init__.py").read_text()
    assert common.startswith(host_common.split("__all__")[0].rstrip("\n"))
    backbones = ast.parse(files["mmaction/models/backbones/__init__.py"])
    names = next(
        ast.literal_eval(n.value)
        for n in backbones.body
        if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"
    )
    assert {"ResNetSTH", "MobileNetV2STH", "ResNetTSM"} <= set(names)
    # an sdist has no tests/ and no model-index.yml at its root: the edits are named
    assert set(core_tree.skipped) == {
        "model-index.yml",
        "README.md",
        "README_zh-CN.md",
        "tests/models/recognizers/test_recognizer2d.py",
    }
    assert f"- {CORE_CONFIGS}/metafile.yml" in core_tree.skipped["model-index.yml"]


def test_sth_core_export_edits_a_checkouts_model_index_and_recognizer_tests(mmaction_src, tmp_path):
    checkout = tmp_path / "checkout"
    shutil.copytree(mmaction_src, checkout)
    (checkout / "model-index.yml").write_text(
        "Import:\n  - configs/recognition/tsm/metafile.yml\n"
        "  - configs/recognition/x3d/metafile.yml\n  - configs/localization/bmn/metafile.yml\n"
    )
    recognizers = checkout / "tests/models/recognizers/test_recognizer2d.py"
    recognizers.parent.mkdir(parents=True)
    recognizers.write_text("def train_test_step(cfg, input_shape):\n    pass\n")
    tree = export_sth(checkout, route="core", formatted=False)
    assert set(tree.skipped) == {"README.md", "README_zh-CN.md"}
    index = tree.files["model-index.yml"]
    assert "x3d/metafile.yml\n  - configs/recognition/sth/metafile.yml\n  - configs/local" in index
    assert "def test_sth():" in tree.files["tests/models/recognizers/test_recognizer2d.py"]
    assert "tests/models/recognizers/test_recognizer2d_sth.py" not in tree.files


@pytest.mark.parametrize("route", ["project", "core"])
def test_exported_python_is_host_only_python_37(route, project_tree, core_tree, mmaction_src):
    tree = project_tree if route == "project" else core_tree
    for relative, text in _python_files(tree).items():
        assert newer_syntax(text) == [], relative
        new = not (mmaction_src / relative).exists()  # the host's own files keep its header
        if new and relative.startswith(("mmaction/", "tests/", PROJECT)):
            assert text.startswith("\n".join(HEADER)), relative
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                assert node.module.split(".")[0] not in PLUGZOO_PACKAGES, relative


def _private_torch(text: str) -> list[str]:
    """Uses of private torch API in ``text``: ``torch._x`` anywhere in an attribute chain
    rooted at ``torch`` (``torch._C._nn.x``, ``torch.ops.mkldnn._x``), and ``torch.ops``."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Attribute):
            continue
        chain, base = [node.attr], node.value
        while isinstance(base, ast.Attribute):
            chain.insert(0, base.attr)
            base = base.value
        if isinstance(base, ast.Name) and base.id == "torch":
            private = [p for p in chain if p.startswith("_") and not p.startswith("__")]
            if private or chain[0] == "ops":
                found.append(f"{node.lineno}: torch.{'.'.join(chain)}")
    return sorted(set(found))


@pytest.mark.parametrize("route", ["project", "core"])
def test_no_private_torch_op_is_exported(route, project_tree, core_tree):
    # the check finds them where they are: plugzoo's optional oneDNN kernels
    onednn = (REPO_ROOT / "mmaction_ext/models/sth_onednn.py").read_text()
    assert any("torch._C._nn" in use for use in _private_torch(onednn))
    assert any("torch.ops.mkldnn" in use for use in _private_torch(onednn))
    tree = project_tree if route == "project" else core_tree
    assert not any(k.endswith("sth_onednn.py") for k in tree.files)
    for relative, text in _python_files(tree).items():
        assert _private_torch(text) == [], relative


@pytest.mark.parametrize("route", ["project", "core"])
def test_no_exported_file_names_the_onednn_module(route, project_tree, core_tree):
    """The optional import of sth_onednn, its branch and the docstrings' references to it
    are removed: nothing exported points at a module the export does not contain."""
    source = (REPO_ROOT / "mmaction_ext/models/sth_fast_paths.py").read_text()
    assert "import mmaction_ext.models.sth_onednn as sth_onednn" in source
    assert ":mod:`.sth_onednn`" in (REPO_ROOT / "mmaction_ext/models/sth_conv.py").read_text()
    tree = project_tree if route == "project" else core_tree
    for relative, text in tree.files.items():
        assert "sth_onednn" not in text, relative
    fast_paths = next(v for k, v in tree.files.items() if k.endswith("/sth_fast_paths.py"))
    assert "try:" not in fast_paths and "is not None:\n        out =" not in fast_paths


ONEDNN = "mmaction_ext.models.sth_onednn"


class _NeedsAMissingModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """sth_onednn as it would be if a module it imports were not installed."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname == ONEDNN else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        importlib.import_module("a_module_that_is_not_installed")


@pytest.mark.parametrize("case", ["absent", "broken"])
def test_sth_fast_paths_runs_without_sth_onednn_but_not_past_its_import_errors(case, monkeypatch):
    """sth_fast_paths imported afresh: without sth_onednn it has no kernels; with an
    sth_onednn that cannot import a module of its own, that error is raised."""
    import mmaction_ext  # noqa: F401
    from mmaction_ext.models import sth_fast_paths

    if case == "absent":
        monkeypatch.setitem(sys.modules, ONEDNN, None)  # its import: ModuleNotFoundError
    else:
        monkeypatch.delitem(sys.modules, ONEDNN)
        monkeypatch.setattr(sys, "meta_path", [_NeedsAMissingModule(), *sys.meta_path])
    name = "mmaction_ext.models.sth_fast_paths_afresh"
    spec = importlib.util.spec_from_file_location(name, sth_fast_paths.__file__)
    module = importlib.util.module_from_spec(spec)
    if case == "absent":
        spec.loader.exec_module(module)
        assert module.sth_onednn is None
    else:
        with pytest.raises(ModuleNotFoundError) as missing:
            spec.loader.exec_module(module)
        assert missing.value.name == "a_module_that_is_not_installed"


@pytest.mark.parametrize("arrangement", ["grouped", "masked"])
def test_sth_without_the_onednn_kernels_gives_the_same_outputs(arrangement, monkeypatch):
    """At inference, what the exported operator runs (no sth_onednn module) equals
    plugzoo's STH through its oneDNN kernels, which are checked to have given the output.
    (With autograd the kernels do not apply: both run the same plain operators.)"""
    import mmaction_ext  # noqa: F401
    from mmaction_ext.models import STHConv, sth_fast_paths, sth_onednn

    if sth_onednn._CONV_ADD is None:
        pytest.skip("this torch build lacks oneDNN's convolution ops: no kernel path to compare")
    torch.manual_seed(0)
    conv = STHConv(16, 16, num_segments=4, temporal_init="random", arrangement=arrangement)
    x = torch.randn(8, 16, 9, 9).contiguous(memory_format=torch.channels_last)
    kernel_outputs = []
    onednn_forward = sth_onednn.forward

    def recorded(conv, x):
        kernel_outputs.append(onednn_forward(conv, x))
        return kernel_outputs[-1]

    monkeypatch.setattr(sth_onednn, "forward", recorded)
    with torch.no_grad():
        fast = conv(x)
    assert len(kernel_outputs) == 1 and kernel_outputs[0] is not None
    monkeypatch.setattr(sth_fast_paths, "sth_onednn", None)
    with torch.no_grad():
        plain = conv(x)
    assert len(kernel_outputs) == 1
    torch.testing.assert_close(plain, fast, rtol=1e-5, atol=1e-5)


def test_configs_inherit_mmaction2_recipes(project_tree, core_tree, mmaction_src):
    recipes = mmaction_src / "mmaction/.mim/configs"
    for name in CONFIGS:
        project = _assignments(project_tree.files[f"{PROJECT}/configs/{name}"])
        base = ast.literal_eval(project["_base_"])
        assert base.startswith("mmaction::recognition/tsm/")
        assert (recipes / base.split("::")[1]).is_file(), base
        assert ast.unparse(project["custom_imports"]) == "dict(imports='models')"
        core = _assignments(core_tree.files[f"{CORE_CONFIGS}/{name}"])
        (relative,) = ast.literal_eval(core["_base_"])
        assert (recipes / "recognition/sth" / relative).resolve().is_file(), relative
        assert "custom_imports" not in core
        assert ast.unparse(core["model"]) == ast.unparse(project["model"])


def _assignments(text):
    return {n.targets[0].id: n.value for n in ast.parse(text).body if isinstance(n, ast.Assign)}


def test_core_readme_and_metafile_meet_check_algo_readme(core_tree):
    readme = core_tree.files[f"{CORE_CONFIGS}/README.md"]
    assert "<!-- [ALGORITHM] -->" in readme
    abstract = readme.split("## Abstract", 1)[1].split("\n## ", 1)[0]
    paragraphs = [p for p in abstract.split("\n\n") if p.strip() and "<!--" not in p]
    assert paragraphs and "Spatio-Temporal Hybrid Convolution Network" in paragraphs[0]
    assert "No results and no checkpoints" in readme
    meta = yaml.safe_load(core_tree.files[f"{CORE_CONFIGS}/metafile.yml"])
    assert meta["Collections"][0]["README"] == f"{CORE_CONFIGS}/README.md"
    assert [m["Config"] for m in meta["Models"]] == [f"{CORE_CONFIGS}/{n}" for n in CONFIGS]
    for model in meta["Models"]:
        assert not {"Weights", "Results", "Training Log"} & set(model)
        assert model["In Collection"] == "STH"


def test_cli_route_applies_to_sth_only_and_reaches_its_exporter(mmaction_src, capsys):
    code = main(["export", "upsr", "--host-src", str(mmaction_src), "--route", "core", "--diff"])
    assert code == 2 and "--route applies to sth only" in capsys.readouterr().err
    # the route reaches export_sth, which checks it before any work
    with pytest.raises(ValueError, match="--route 'upstream': expected one of project, core"):
        export_paper("sth", mmaction_src, route="upstream")


def test_sth_export_hands_the_formatters_an_absolute_host_src(mmaction_src, monkeypatch):
    """The formatters run in a scratch folder and read the host's setup.cfg by path: a
    relative --host-src reaches them resolved."""
    received = []

    def style(files, host_src):
        received.append(host_src)
        return files

    monkeypatch.setattr("plugins.export.mmaction.mmaction_style", style)
    monkeypatch.chdir(mmaction_src.parent)
    export_sth(Path(mmaction_src.name), route="project")
    assert received == [mmaction_src.resolve()]


def test_cli_names_a_missing_formatter_without_a_traceback(mmaction_src, monkeypatch, capsys):
    monkeypatch.setattr("plugins.export.mmaction.formatter_env", lambda name: None)
    assert main(["export", "sth", "--host-src", str(mmaction_src), "--diff"]) == 1
    err = capsys.readouterr().err
    assert "plugzoo export sth: isort (requirements/export.txt) is not installed" in err


# --- formatted with MMAction2's pinned tools (slow: about a minute per route) -------------


@pytest.fixture(scope="module")
def style_tools():
    """MMAction2's pinned pre-commit tools in the export cache (installed once)."""
    names = [n for n in formatter_names() if n != "black"]
    for name in names:
        if formatter_env(name) is None:
            try:
                install_formatter(name)
            except subprocess.CalledProcessError as error:
                pytest.skip(f"the pinned {name} cannot be installed: {error}")
    return names


@pytest.fixture(scope="module")
def formatted(mmaction_src, style_tools):
    del style_tools  # the export formats with them
    return {route: export_sth(mmaction_src, route=route) for route in ("project", "core")}


@pytest.mark.slow
@pytest.mark.parametrize("route", ["project", "core"])
def test_formatted_export_passes_mmaction2s_pre_commit_and_docstring_gate(
    route, formatted, mmaction_src, tmp_path
):
    """flake8, isort, yapf (79 columns, the host's setup.cfg), single quotes, docformatter,
    codespell, mdformat, the copyright header and interrogate >= 80%: the fixers change
    nothing more, the linters report nothing, and the export is deterministic."""
    tree = formatted[route]
    assert mmaction_style(tree.files, mmaction_src) == tree.files
    tree.write(tmp_path)
    assert style_problems(tmp_path, sorted(tree.files), mmaction_src) == []
    assert export_sth(mmaction_src, route=route).files == tree.files


@pytest.mark.slow
def test_cli_exports_sth_from_a_relative_host_src(mmaction_src, style_tools, monkeypatch, tmp_path):
    del style_tools  # the export formats with them
    monkeypatch.chdir(mmaction_src.parent)
    out = tmp_path / "out"
    assert main(["export", "sth", "--host-src", mmaction_src.name, "--out", str(out)]) == 0
    assert (out / PROJECT / "models/sth_conv.py").is_file()


# --- run as MMAction2 runs them, without plugzoo ------------------------------------------

EQUIVALENCE = """
import sys
import torch
from mmaction.registry import MODELS
from mmaction.utils import register_all_modules

register_all_modules()
backbone = MODELS.build(dict(type="ResNetSTH", depth=18, num_segments=4, pretrained=None))
assert not type(backbone).__module__.startswith(("mmaction_ext", "plugins"))
backbone.load_state_dict(torch.load(sys.argv[1] + "/weights.pt", weights_only=True))
backbone.eval()
with torch.no_grad():
    features = backbone(torch.load(sys.argv[1] + "/input.pt", weights_only=True))
torch.save({"features": features, "module": type(backbone).__module__}, sys.argv[1] + "/out.pt")
"""

PROJECT_RUN = """
import sys
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

init_default_scope("mmaction")
for path in sys.argv[1:]:
    cfg = Config.fromfile(path)  # imports the project's models (custom_imports)
    cfg.model.backbone.pretrained = None  # no download in a test
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__module__.startswith("models."), type(model.backbone)
    inputs = torch.randn(2, cfg.model.backbone.num_segments, 3, 32, 32)
    samples = [ActionDataSample().set_gt_label(label) for label in (0, 1)]
    losses = model(inputs, samples, mode="loss")
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
"""

SITECUSTOMIZE = """# test-only: every interpreter of this run (mim's, and the train.py it
# starts) gets the export shim: plugzoo blocked, MMAction2's missing DRN module stood in for
import importlib.util

_spec = importlib.util.spec_from_file_location("export_shim", {shim!r})
_shim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shim)
_shim.install()
"""


def _fresh_env(tmp_path: Path, *first: Path) -> dict:
    """An environment whose interpreters put ``first`` on the path and load the shim."""
    site = tmp_path / "shim_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(shim=str(SHIM)))
    return {**exported_env(*first, site), "PYTHONWARNINGS": "ignore"}


def _reference(tmp_path):
    """plugzoo's ResNetSTH-18 weights and an input, saved for the exported tree to load."""
    import mmaction_ext  # noqa: F401  (plugzoo's STH, registered)

    from mmaction.registry import MODELS

    torch.manual_seed(0)
    reference = MODELS.build(dict(type="ResNetSTH", depth=18, num_segments=4, pretrained=None))
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / "weights.pt")
    frames = torch.randn(8, 3, 32, 32)  # 2 clips x 4 segments
    torch.save(frames, tmp_path / "input.pt")
    with torch.no_grad():
        return reference(frames)


def _tiny_training_options(videos: Path) -> list[str]:
    """``--cfg-options`` for one training iteration of a Something-Something V2 config on
    two generated clips: their list and folder; batch 2 without workers (one iteration in
    one epoch); the recipe's 256/224-pixel resize and crops at 64/56 (a 224-pixel
    ResNet-50 step takes minutes on a shared CPU); no validation or test loop (no
    Something-Something data); no 2D weights download."""
    return [
        f"train_dataloader.dataset.ann_file={videos / 'train_list_videos.txt'}",
        f"train_dataloader.dataset.data_prefix.video={videos / 'videos'}",
        "train_dataloader.batch_size=2",
        "train_dataloader.num_workers=0",
        "train_dataloader.persistent_workers=False",
        "train_dataloader.dataset.pipeline.3.scale=(-1,64)",
        "train_dataloader.dataset.pipeline.4.input_size=56",
        "train_dataloader.dataset.pipeline.5.scale=(56,56)",
        "train_cfg.max_epochs=1",
        "val_cfg=None",
        "val_dataloader=None",
        "val_evaluator=None",
        "test_cfg=None",
        "test_dataloader=None",
        "test_evaluator=None",
        "model.backbone.pretrained=None",
    ]


def _train_one_iteration(config: str, cwd: Path, env: dict, tmp_path: Path, host: Path):
    """One training iteration of ``config`` by ``mim train mmaction`` where mim is installed,
    else by the ``tools/train.py`` the sdist ships (``host``), as mim would run it."""
    videos = write_tiny_video_dataset(tmp_path / "clips", clips_per_class=1, num_frames=8)
    work = tmp_path / "work"
    if MIM.is_file():
        command = [str(MIM), "train", "mmaction", config]
    else:
        command = [sys.executable, str(host / "mmaction/.mim/tools/train.py"), config]
    command += ["--work-dir", str(work), "--cfg-options", *_tiny_training_options(videos)]
    run_checked(command, cwd, env)
    logs = "\n".join(p.read_text() for p in work.glob("*/*.log"))
    assert "Epoch(train) [1][1/1]" in logs, logs[-3000:]
    assert (work / "epoch_1.pth").is_file()


@pytest.mark.slow
def test_sth_project_builds_trains_with_mim_and_matches_plugzoo(formatted, mmaction_src, tmp_path):
    expected = _reference(tmp_path)
    host = tmp_path / "mmaction2"
    formatted["project"].write(host)
    project = host / PROJECT
    env = _fresh_env(tmp_path, project)
    (tmp_path / "run_project.py").write_text(SHIM_CONTROL + PROJECT_RUN)
    (tmp_path / "equivalence.py").write_text(
        SHIM_CONTROL + EQUIVALENCE.replace("register_all_modules()", "import models")
    )
    configs = [f"configs/{name}" for name in CONFIGS]
    run_checked([sys.executable, str(tmp_path / "run_project.py"), *configs], project, env)
    run_checked([sys.executable, str(tmp_path / "equivalence.py"), str(tmp_path)], project, env)
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert out["module"] == "models.backbones.resnet_sth"
    torch.testing.assert_close(out["features"], expected, rtol=0, atol=1e-5)
    _train_one_iteration(configs[0], project, env, tmp_path, mmaction_src)


@pytest.mark.slow
def test_sth_core_tree_passes_its_tests_trains_with_mim_and_matches_plugzoo(
    formatted, mmaction_src, tmp_path
):
    """The core tree overlaid on the sdist is the ``mmaction`` package itself; the sdist
    keeps its configs under mmaction/.mim/, so a checkout's configs/ is made from them
    first (test set-up: MMAction2's get_recognizer_cfg and relative bases read there)."""
    expected = _reference(tmp_path)
    host = tmp_path / "mmaction2"
    shutil.copytree(mmaction_src, host)
    shutil.copytree(host / "mmaction/.mim/configs", host / "configs")
    formatted["core"].write(host)
    env = _fresh_env(tmp_path, host)
    tests = sorted(k for k in formatted["core"].files if k.startswith("tests/"))
    pytest_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    done = run_checked(pytest_run, host, env)
    assert f"{len(tests) + 1} passed" in done.stdout, done.stdout[-2000:]
    (tmp_path / "equivalence.py").write_text(SHIM_CONTROL + EQUIVALENCE)
    run_checked([sys.executable, str(tmp_path / "equivalence.py"), str(tmp_path)], host, env)
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert out["module"] == "mmaction.models.backbones.resnet_sth"
    torch.testing.assert_close(out["features"], expected, rtol=0, atol=1e-5)
    _train_one_iteration(f"{CORE_CONFIGS}/{CONFIGS[0]}", host, env, tmp_path, host)


def test_refusal_names_each_plugzoo_dependency(mmaction_src, tmp_path):
    """A model file that still imports plugzoo is refused, by file and line."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "mmaction_ext", repo / "mmaction_ext")
    shutil.copytree(REPO_ROOT / "configs/mmaction", repo / "configs/mmaction")
    layout = repo / "mmaction_ext/models/sth_layout.py"
    layout.write_text(layout.read_text() + "\nfrom plugins.paths import REPO_ROOT\n")
    for route in ("project", "core"):
        with pytest.raises(ExportRefused, match="sth_layout.py:.*plugins.paths"):
            export_sth(mmaction_src, repo=repo, route=route, formatted=False)
