"""STH -> MMAction2 1.2.0, the community-project route: ``projects/sth/``.

MMAction2's ``projects/`` folder takes community models under lighter rules than the core
package (its example project: ``README.md`` with a three-milestone checklist, ``configs/``
inheriting MMAction2's recipes through ``mmaction::`` and importing the project's
``models`` package, ``models/`` registering into ``mmaction.registry.MODELS``). The core
route (``mmaction/models/common/``, ``backbones/``, ``configs/recognition/sth/`` with a
metafile and ``model-index.yml``) is later work.

The exported operator is plugzoo's: ``sth_conv.py`` imports ``sth_fast_paths.py``, whose
oneDNN fast path calls private torch ops; it is exported as it is and named in the README
and docs/upstreaming.md as an optional part a maintainer may ask to drop.
"""

from __future__ import annotations

import ast
import configparser
import io
import tokenize
from pathlib import Path

from plugins.export.core import (
    ExportRefused,
    ExportTree,
    PythonRules,
    rewrite_python,
    text_mentions,
    with_header,
)
from plugins.paths import REPO_ROOT

PROJECT = "projects/sth"
PAPER_LINK = "https://arxiv.org/abs/2003.08042"
PAPER_TITLE = "STH: Spatio-Temporal Hybrid Convolution for Efficient Action Recognition"
PROVENANCE = "written for plugzoo from the paper arXiv 2003.08042; not derived from released code"
# MMAction2's copyright line (its check-copyright hook) and where the code comes from
HEADER = ("# Copyright (c) OpenMMLab. All rights reserved.", f"# {PROVENANCE}")

# plugzoo file -> project file; the package keeps its layout, so relative imports stay
SOURCES = {
    f"mmaction_ext/models/{name}.py": f"{PROJECT}/models/{name}.py"
    for name in ("sth_conv", "sth_layout", "sth_fast_paths")
} | {
    f"mmaction_ext/models/backbones/{name}.py": f"{PROJECT}/models/backbones/{name}.py"
    for name in ("__init__", "convert_2d", "mobilenet_v2_sth", "resnet_sth")
}
# plugzoo configs -> project configs; the others inherit plugzoo's own dataset bases
CONFIGS = (
    "sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py",
    "sth_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py",
    "sth_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-50e_sthv2-rgb.py",
)
# plugzoo's local 2D checkpoints -> the model-zoo names MMAction2's recipes use
PRETRAINED = {
    "checkpoints/torchvision/resnet50-0676ba61.pth": "torchvision://resnet50",
    "checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth": "mmcls://mobilenet_v2",
}

RULES = PythonRules(
    module_map={},
    text_map={"mmaction_ext/models/": f"{PROJECT}/models/"},
    header=HEADER,
    relative_imports=True,
)

MODELS_INIT = """from .backbones import MobileNetV2STH, ResNetSTH
from .sth_conv import STHConv, STHDepthwiseConv

__all__ = ['MobileNetV2STH', 'ResNetSTH', 'STHConv', 'STHDepthwiseConv']
"""


def single_quotes(text: str) -> str:
    """Double-quoted strings as single-quoted where no quote inside changes meaning (what
    MMAction2's ``double-quote-string-fixer`` hook does); docstrings stay triple-quoted."""
    out, lines = [], text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    position = 0
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type != tokenize.STRING:
            continue
        body = token.string.lstrip("rRbBuUfF")
        prefix = token.string[: len(token.string) - len(body)]
        if body.startswith('"""') or not body.startswith('"') or "'" in body:
            continue
        start = starts[token.start[0] - 1] + token.start[1]
        out.append(text[position:start] + prefix + "'" + body[1:-1] + "'")
        position = start + len(token.string)
    out.append(text[position:])
    return "".join(out)


def yapf_style(host_src: Path) -> dict:
    """MMAction2's ``[yapf]`` section of ``setup.cfg``."""
    parser = configparser.ConfigParser()
    parser.read(host_src / "setup.cfg")
    if "yapf" not in parser:
        raise FileNotFoundError(f"--host-src {host_src}: setup.cfg has no [yapf] section")
    return dict(parser["yapf"])


def format_python(text: str, style: dict) -> str:
    from yapf.yapflib.yapf_api import FormatCode

    formatted, _ = FormatCode(single_quotes(text), style_config=style)
    return formatted


def _mmaction_recipe(path: Path) -> str:
    """The first ``mmaction::`` base reached through ``path``'s ``_base_`` chain."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets
        ):
            bases = ast.literal_eval(node.value)
            for base in [bases] if isinstance(bases, str) else bases:
                if base.startswith("mmaction::"):
                    return base
                found = _mmaction_recipe(path.parent / base)
                if found:
                    return found
    return ""


def _dict_source(value) -> str:
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={_dict_source(v)}" for k, v in value.items()) + ")"
    return repr(value)


def project_config(name: str, repo: Path = REPO_ROOT) -> str:
    """A project config: MMAction2's recipe as ``_base_``, the project's ``models`` imported,
    the backbone (and the head keys that differ from the recipe's) of plugzoo's config."""
    import mmaction
    from mmengine.config import Config

    path = repo / "configs/mmaction/sth" / name
    recipe = _mmaction_recipe(path)
    if not recipe:
        raise ValueError(f"{path}: no mmaction:: recipe in its _base_ chain")
    config = Config.fromfile(str(path))
    recipe_file = Path(mmaction.__file__).parent / ".mim/configs" / recipe.split("::", 1)[1]
    base = Config.fromfile(str(recipe_file))
    backbone = config.model.backbone.to_dict()
    local = backbone.get("pretrained")
    if local not in PRETRAINED:
        raise ValueError(f"{path}: backbone.pretrained {local!r} has no model-zoo name")
    backbone = {"_delete_": True, **backbone, "pretrained": PRETRAINED[local]}
    head = {
        key: value
        for key, value in config.model.cls_head.to_dict().items()
        if base.model.cls_head.get(key) != value
    }
    model = {"backbone": backbone, **({"cls_head": head} if head else {})}
    text = (
        f"_base_ = {recipe!r}\n\n"
        "custom_imports = dict(imports='models')\n\n"
        f"model = {_dict_source(model)}\n"
    )
    return with_header(text, HEADER)


def readme(configs: list[str]) -> str:
    """The project README in the layout of MMAction2's example project, the checklist
    ticked for what is done."""
    first = f"configs/{configs[0]}"
    lines = [
        "# STH: Spatio-Temporal Hybrid Convolution",
        "",
        f"> [{PAPER_TITLE}]({PAPER_LINK})",
        "",
        "<!-- [ALGORITHM] -->",
        "",
        "## Abstract",
        "",
        "STH splits a 2D convolution's input channels into groups: some convolve over space, "
        "others over time, inside one convolution, so a 2D backbone models motion at the "
        "cost of a 2D network. This project provides `STHConv` (and a depthwise form), "
        "`ResNetSTH` and `MobileNetV2STH`, registered in `mmaction.registry.MODELS`, and "
        "configs that swap them into MMAction2's TSM recipes for Something-Something V2.",
        "",
        "The paper's code and full text were not available: this is a reconstruction from "
        "its abstract, and every choice the abstract leaves open is a backbone option "
        "(`num_groups`, `temporal_groups`, `interleave`, `temporal_kernel`, "
        f"`temporal_init`). Provenance: {PROVENANCE}.",
        "",
        "`models/sth_fast_paths.py` is an optional CPU fast path (oneDNN, through private "
        "torch ops); the readable operator in `models/sth_conv.py` is the reference and "
        "gives the same outputs.",
        "",
        "## Usage",
        "",
        "### Setup Environment",
        "",
        "Install MMAction2 1.2.0 (see the installation guide), then run every command from "
        "this folder, with it on the Python path:",
        "",
        "```shell",
        "export PYTHONPATH=`pwd`:$PYTHONPATH",
        "```",
        "",
        "### Data Preparation",
        "",
        "Prepare Something-Something V2 as in `tools/data/sthv2/README.md`; the configs read "
        "the recipe's `data/sthv2` layout.",
        "",
        "### Training commands",
        "",
        "```shell",
        f"mim train mmaction {first}",
        f"mim train mmaction {first} --launcher pytorch --gpus 8",
        "```",
        "",
        "### Testing commands",
        "",
        "```shell",
        f"mim test mmaction {first} --checkpoint $CHECKPOINT",
        "```",
        "",
        "## Configs",
        "",
        *[f"- [`configs/{name}`](configs/{name})" for name in configs],
        "",
        "## Results",
        "",
        "No results yet: the paper released no code or checkpoints, and these configs have not "
        "been trained on Something-Something V2.",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@article{li2020sth,",
        "  title   = {{STH}: Spatio-Temporal Hybrid Convolution for Efficient Action Recognition},",
        "  author  = {Li, Xu and Wang, Jingwen and Ma, Lin and Zhang, Kaihao and Lian, "
        "Fengzong and Kang, Zhanhui and Wang, Jinjun},",
        "  journal = {arXiv preprint arXiv:2003.08042},",
        "  year    = {2020}",
        "}",
        "```",
        "",
        "## Checklist",
        "",
        "- [ ] Milestone 1: PR-ready, and acceptable to be one of the `projects/`.",
        "  - [x] Finish the code",
        "  - [x] Basic docstrings & proper citation",
        "  - [ ] Converted checkpoint and results (Only for reproduction): none released",
        "- [ ] Milestone 2: Indicates a successful model implementation.",
        "  - [ ] Training results",
        "- [ ] Milestone 3: Good to be a part of our core package!",
        "  - [ ] Unit tests",
        "  - [x] Code style",
        "  - [ ] `metafile.yml` and `README.md`",
    ]
    return "\n".join(lines) + "\n"


def export_sth(host_src: Path, repo: Path = REPO_ROOT) -> ExportTree:
    """The ``projects/sth/`` tree of STH against the MMAction2 source ``host_src``.

    Raises:
        ExportRefused: something exported would still depend on plugzoo or on Python > 3.7.
        FileNotFoundError: ``host_src`` is not an MMAction2 source tree.
    """
    host_src = Path(host_src)
    if not (host_src / "mmaction" / "registry.py").is_file():
        raise FileNotFoundError(
            f"--host-src {host_src}: mmaction/registry.py is missing; pass an MMAction2 1.2.0 "
            "source tree (a git checkout or the extracted sdist)"
        )
    style = yapf_style(host_src)
    tree = ExportTree(paper="sth", host="mmaction2")
    problems: list[str] = []
    for source, target in SOURCES.items():
        try:
            text = rewrite_python((repo / source).read_text(encoding="utf-8"), source, RULES)
        except ExportRefused as refused:
            problems.extend(refused.problems)
            continue
        tree.files[target] = format_python(text, style)
    if problems:
        raise ExportRefused("sth", problems)
    tree.files[f"{PROJECT}/models/__init__.py"] = format_python(
        with_header(MODELS_INIT, HEADER), style
    )
    for name in CONFIGS:
        tree.files[f"{PROJECT}/configs/{name}"] = format_python(project_config(name, repo), style)
    tree.files[f"{PROJECT}/README.md"] = readme(list(CONFIGS))
    problems = [
        f"{relative}:{line}: {what}"
        for relative, text in tree.files.items()
        for line, what in text_mentions(text, allowed=(PROVENANCE,))
    ]
    if problems:
        raise ExportRefused("sth", problems)
    return tree
