"""The paper READMEs under configs/ (STH, UPSR, TeachCLIP, BagFormer) and the READMEs of the
two retrieval grounds (CLIP4Clip, ALBEF) open with a command sequence that runs the method
with its host's own tool on data generated offline.

The slow tests run each README's first ```bash block exactly as written, from the repository
root, with ``OUT`` pointing into a temporary folder (every block writes its data, runs and
results under ``$OUT``), and check that it exits 0 and writes the file it promises. The fast
tests check the shape every such README keeps: the runnable block first, one headline table
block, and every config of its folder named in full.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

# README -> (headline table id, what the first bash block writes under $OUT (a glob),
#            config files the README must name in full)
PAGES = {
    "configs/mmaction/sth/README.md": (
        "sth/headline",
        "test_results.pkl",
        [
            "configs/mmaction/sth/*.py",
            "configs/mmaction/motion/*.py",
            "configs/mmaction/baselines/*.py",
        ],
    ),
    "configs/recbole/upsr/README.md": (
        "upsr/headline",
        "saved/UPSR-*.pth",
        ["configs/recbole/*.yaml", "configs/recbole/upsr_ablations/*.yaml"],
    ),
    "configs/lavis/clip4clip/README.md": (
        "clip4clip/headline",
        "seqTransf-test/evaluate.txt",
        ["configs/lavis/clip4clip/*.yaml"],
    ),
    "configs/lavis/teachclip/README.md": (
        "teachclip/headline",
        "student-test/evaluate.txt",
        ["configs/lavis/teachclip/*.yaml"],
    ),
    "configs/lavis/albef/README.md": (
        "albef/headline",
        "albef-test/evaluate.txt",
        ["configs/lavis/albef/*.yaml"],
    ),
    "configs/lavis/bagformer/README.md": (
        "bagformer/headline",
        "bagformer-test/evaluate.txt",
        ["configs/lavis/bagformer/*.yaml"],
    ),
}
FIRST_BASH = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
SECTION = re.compile(r"^## ", re.MULTILINE)


def first_bash_block(text: str) -> tuple[int, str]:
    """(offset, body) of the first fenced ```bash block of a README."""
    match = FIRST_BASH.search(text)
    assert match, "no ```bash block"
    return match.start(), match[1]


def read(name: str) -> str:
    return (REPO_ROOT / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_runnable_block_comes_first_and_writes_under_out(name):
    text = read(name)
    offset, block = first_bash_block(text)
    sections = [m.start() for m in SECTION.finditer(text)]
    assert sections and sections[0] < offset, (
        f"{name}: the first ```bash block precedes any section"
    )
    assert len(sections) < 2 or offset < sections[1], (
        f"{name}: the first ```bash block is not under the first section"
    )
    assert block.startswith("OUT=${OUT:-runs/"), (
        f"{name}: the block must start by setting OUT (its outputs go under $OUT)"
    )


@pytest.mark.parametrize("name", sorted(PAGES))
def test_one_headline_table_block(name):
    table, _, _ = PAGES[name]
    text = read(name)
    assert re.findall(r"^<!-- table: (\S+) -->$", text, re.MULTILINE) == [table]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_config_of_the_folder_is_named_in_full(name):
    _, _, patterns = PAGES[name]
    text = read(name)
    configs = sorted({p for pattern in patterns for p in REPO_ROOT.glob(pattern)})
    assert configs, patterns
    missing = [str(p.relative_to(REPO_ROOT)) for p in configs if p.name not in text]
    assert not missing, f"{name} does not name: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_first_bash_block_runs(name, tmp_path):
    _, expected, _ = PAGES[name]
    _, block = first_bash_block(read(name))
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        # the block's `python`, `mim` and `plugzoo` are this environment's
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONWARNINGS": "ignore",
        "CUDA_VISIBLE_DEVICES": "",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    written = [p for p in out.glob(expected) if p.is_file() and p.stat().st_size > 0]
    assert written, f"{name}: nothing written at $OUT/{expected}; $OUT holds " + ", ".join(
        sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())[:40]
    )


def test_upsr_hyper_parameters_mirror_the_model_yaml_key_by_key():
    """The UPSR README lists one bullet per key of UPSR.yaml, in the yaml's order, with the
    yaml's default (RecBole's model pages mirror the model's yaml the same way)."""
    import yaml

    path = REPO_ROOT / "recbole_ext" / "properties" / "model" / "UPSR.yaml"
    defaults = yaml.safe_load(path.read_text())
    text = read("configs/recbole/upsr/README.md")
    start = text.index("**Model Hyper-Parameters**")
    end = text.index("\n\n", text.index("\n- `", start))
    bullets = re.findall(r"^- `(\w+) \((\w+)\)` :(.*?)(?=^- `|\Z)", text[start:end], re.M | re.S)
    assert [key for key, _, _ in bullets] == list(defaults), (
        "UPSR.yaml's keys and the README's bullets differ (add a bullet per new key, in order)"
    )
    for key, _, body in bullets:
        value = defaults[key]
        shown = "None" if value is None else repr(value) if isinstance(value, str) else str(value)
        if not isinstance(value, dict):
            assert f"Defaults to `{shown}`" in " ".join(body.split()), (key, shown)


def test_sth_metafile_has_an_entry_for_every_config():
    import yaml

    metafile = yaml.safe_load((REPO_ROOT / "configs/mmaction/sth/metafile.yml").read_text())
    (collection,) = metafile["Collections"]
    assert (REPO_ROOT / collection["README"]).is_file()
    models = metafile["Models"]
    configs = {model["Config"] for model in models}
    for config in sorted((REPO_ROOT / "configs/mmaction/sth").glob("*.py")):
        assert str(config.relative_to(REPO_ROOT)) in configs, config.name
    for model in models:
        assert (REPO_ROOT / model["Config"]).is_file(), model["Config"]
        assert model["Name"] == Path(model["Config"]).stem
        assert model["In Collection"] == collection["Name"]
        # nothing was published: no checkpoint or log may be claimed
        assert "Weights" not in model and "Training Log" not in model, model["Name"]
