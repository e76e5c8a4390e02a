"""STH exported as MMAction2 1.2.0's community project ``projects/sth/``.

The fast tests check the tree against the pinned sdist; the slow ones run the project the
way MMAction2's project README does (from its folder, ``custom_imports='models'``) in a fresh
interpreter through ``plugins/export/shim.py`` (test-only: plugzoo cannot be imported, and
MMAction2's missing DRN module gets a stand-in), and compare with plugzoo's STH.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plugins.export.core import PLUGZOO_PACKAGES, ExportRefused, newer_syntax
from plugins.export.mmaction import (
    CONFIGS,
    HEADER,
    PROJECT,
    SOURCES,
    export_sth,
    format_python,
    single_quotes,
    yapf_style,
)
from plugins.export.sources import HostSourceUnavailable, extract_host

SHIM = Path(__file__).resolve().parents[1] / "plugins" / "export" / "shim.py"


def test_single_quotes_like_mmaction2s_hook():
    source = 'a = "x"\nb = "it\'s"\nc = f"{a}"\nd = """doc"""\ne = r"\\d"\n'
    assert (
        single_quotes(source)
        == 'a = \'x\'\nb = "it\'s"\nc = f\'{a}\'\nd = """doc"""\ne = r\'\\d\'\n'
    )


@pytest.fixture(scope="module")
def mmaction_src(tmp_path_factory):
    try:
        return extract_host("mmaction2", tmp_path_factory.mktemp("mmaction2-src"))
    except HostSourceUnavailable as error:
        pytest.skip(f"the pinned MMAction2 sdist cannot be obtained: {error}")


@pytest.fixture(scope="module")
def sth_tree(mmaction_src):
    try:
        return export_sth(mmaction_src)
    except ExportRefused as refused:
        # the export refuses, as it must, while plugzoo's STH code uses Python > 3.7; the
        # refusal must name only that (mmaction_ext is maintained beside this exporter)
        floor = [p for p in refused.problems if p.startswith("mmaction_ext/") and "(3." in p]
        if floor == refused.problems:
            pytest.xfail(f"STH is not exportable yet: {'; '.join(refused.problems)}")
        raise


def test_sth_project_layout_headers_and_plugzoo_free_code(sth_tree):
    files = sth_tree.files
    expected = {*SOURCES.values(), f"{PROJECT}/models/__init__.py", f"{PROJECT}/README.md"}
    expected |= {f"{PROJECT}/configs/{name}" for name in CONFIGS}
    assert set(files) == expected
    for relative, text in files.items():
        if not relative.endswith(".py"):
            continue
        assert text.startswith("\n".join(HEADER)), relative
        assert newer_syntax(text) == [], relative
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                assert node.module.split(".")[0] not in PLUGZOO_PACKAGES, relative
    readme = files[f"{PROJECT}/README.md"]
    for milestone in ("Milestone 1", "Milestone 2", "Milestone 3", "## Citation", "## Results"):
        assert milestone in readme


def test_sth_configs_inherit_mmaction2_recipes_and_import_the_project(sth_tree, mmaction_src):
    for name in CONFIGS:
        tree = ast.parse(sth_tree.files[f"{PROJECT}/configs/{name}"])
        values = {
            node.targets[0].id: node.value for node in tree.body if isinstance(node, ast.Assign)
        }
        base = ast.literal_eval(values["_base_"])
        assert base.startswith("mmaction::recognition/")
        assert (mmaction_src / "mmaction/.mim/configs" / base.split("::")[1]).is_file(), base
        assert ast.unparse(values["custom_imports"]) == "dict(imports='models')"


def test_sth_export_is_deterministic_and_yapf_clean(sth_tree, mmaction_src):
    assert export_sth(mmaction_src).files == sth_tree.files
    style = yapf_style(mmaction_src)
    for relative, text in sth_tree.files.items():
        if relative.endswith(".py"):
            assert format_python(text, style) == text, relative


PROJECT_RUN = """
import sys
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

init_default_scope("mmaction")
outputs = {}
for path in sys.argv[2:]:
    cfg = Config.fromfile(path)  # imports the project's models (custom_imports)
    cfg.model.backbone.pretrained = None  # no download in a test
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__module__.startswith("models."), type(model.backbone)
    segments = cfg.model.backbone.num_segments
    inputs = torch.randn(2, segments, 3, 32, 32)
    samples = [ActionDataSample().set_gt_label(label) for label in (0, 1)]
    losses = model(inputs, samples, mode="loss")
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)
    outputs[path] = float(sum(losses.values()))
# the same weights as plugzoo's ResNetSTH give the same features
backbone = MODELS.build(dict(type="ResNetSTH", depth=18, num_segments=4, pretrained=None))
backbone.load_state_dict(torch.load(sys.argv[1] + "/weights.pt", weights_only=True))
backbone.eval()
with torch.no_grad():
    features = backbone(torch.load(sys.argv[1] + "/input.pt", weights_only=True))
torch.save({"features": features, "losses": outputs}, sys.argv[1] + "/exported.pt")
"""


@pytest.mark.slow
def test_sth_project_builds_trains_a_step_and_matches_plugzoo(sth_tree, tmp_path):
    import mmaction_ext  # noqa: F401  (plugzoo's STH, registered)

    from mmaction.registry import MODELS

    host = tmp_path / "mmaction2"
    sth_tree.write(host)
    project = host / PROJECT
    reference = MODELS.build(dict(type="ResNetSTH", depth=18, num_segments=4, pretrained=None))
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / "weights.pt")
    frames = torch.randn(8, 3, 32, 32)  # 2 clips x 4 segments
    torch.save(frames, tmp_path / "input.pt")
    (project / "run_project.py").write_text(PROJECT_RUN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(project), OMP_NUM_THREADS="1")
    configs = [f"configs/{name}" for name in CONFIGS]
    done = subprocess.run(
        [sys.executable, str(SHIM), "run_project.py", str(tmp_path), *configs],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    exported = torch.load(tmp_path / "exported.pt", weights_only=True)
    assert sorted(exported["losses"]) == sorted(configs)
    with torch.no_grad():
        torch.testing.assert_close(exported["features"], reference(frames), rtol=0, atol=1e-6)
