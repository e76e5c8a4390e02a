"""Plugins -> LAVIS 1.0.2: the layout and rules every LAVIS export shares, and BagFormer.

LAVIS has no contribution guide; its tutorials (``docs/tutorial.{models,tasks,datasets,
processors,configs}.rst``) and the commits that added BLIP-2 and PnP-VQA define the layout
a model family takes (:class:`LavisLayout`):

- code in ``lavis/models/<family>_models/``, each model imported (and listed in
  ``__all__``) by ``lavis/models/__init__.py``, so ``load_model`` finds it through the
  registry; tasks, runners, processors and dataset builders likewise register through
  their package's ``__init__.py`` (:func:`register_import`);
- the defaults of each model type in ``lavis/configs/models/<family>/<name>.yaml``, named
  by the class's ``PRETRAINED_MODEL_CONFIG_DICT`` relative to the ``lavis`` package;
- recipes in ``lavis/projects/<family>/{train,eval}/*.yaml``;
- a paper page in ``projects/<name>/README.md``;
- every ``.py`` file opens with Salesforce's BSD-3 docstring, every yaml with the same
  lines as comments (:func:`python_header`, :func:`yaml_header`); formatted by black.

plugzoo's model files hold what LAVIS needs plus two kinds of plugzoo glue the export
removes (:func:`rewrite_model_file`): the absolute paths of plugzoo's default configs
(``PRETRAINED_MODEL_CONFIG_DICT`` is rewritten to LAVIS's relative form, the path
constants and the imports only they used are dropped) and overrides such as
``default_config_path`` that read plugzoo's config package. Run configs are converted by
:func:`convert_config`: ``custom_imports`` and plugzoo's own keys dropped, registry names
plugzoo adds mapped to LAVIS's (``runner_portable`` -> ``runner_base``...), a refusal if
anything plugzoo is left.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from plugins.export.core import (
    ExportRefused,
    ExportTree,
    PythonRules,
    insert_after_last,
    rewrite_python,
    text_mentions,
    with_header,
)
from plugins.paths import REPO_ROOT

LICENSE_LINES = (
    "All rights reserved.",
    "SPDX-License-Identifier: BSD-3-Clause",
    "For full license text, see the LICENSE file in the repo root or "
    "https://opensource.org/licenses/BSD-3-Clause",
)
# LAVIS's copyright line names Salesforce; the exported files are not Salesforce's work
COPYRIGHT = "Copyright (c) 2026, plugzoo contributors."
# words that betray plugzoo in a converted config besides PLUGZOO_WORDS (environment
# variables plugzoo reads through OmegaConf interpolations)
CONFIG_WORDS = ("PLUGZOO", "${oc.env:")


def header_lines(provenance: str) -> tuple[str, ...]:
    """LAVIS's licence header (copyright, BSD-3) and the provenance line."""
    return (COPYRIGHT, *LICENSE_LINES, provenance)


def python_header(text: str, provenance: str) -> str:
    """``text`` with its leading comments removed and LAVIS's header docstring on top: the
    header lines open the module docstring (LAVIS's files start with a docstring of
    exactly these lines, indented by one space); an existing docstring follows them."""
    text = with_header(text, ())
    header = "".join(f" {line}\n" for line in header_lines(provenance))
    tree = ast.parse(text)
    first = tree.body[0] if tree.body else None
    docstring = (
        first is not None
        and isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    if not docstring:
        return f'"""\n{header}"""\n\n{text}'
    lines = text.splitlines(keepends=True)
    opening = lines[0][first.col_offset :]
    quote = next((q for q in ('"""', "'''") if opening.lstrip("rRuU").startswith(q)), None)
    if quote is None or first.lineno != 1:
        raise ValueError("the module docstring must open the file with triple quotes")
    prefix = opening[: opening.index(quote) + 3]
    rest = opening[len(prefix) :]
    return prefix + "\n" + header + "\n" + rest + "".join(lines[1:])


def yaml_header(provenance: str) -> str:
    """LAVIS's yaml header: the licence lines as comments (with LAVIS's leading space)."""
    return "".join(f" # {line}\n" for line in header_lines(provenance)) + "\n"


@dataclass(frozen=True)
class LavisLayout:
    """Where one model family goes in LAVIS's tree.

    Attributes:
        family: the family folder name (``bagformer`` -> ``lavis/models/bagformer_models``).
        project: the paper page's folder under ``projects/`` (default: ``family``).
    """

    family: str
    project: str = ""

    @property
    def models(self) -> str:
        return f"lavis/models/{self.family}_models"

    @property
    def model_configs(self) -> str:
        return f"lavis/configs/models/{self.family}"

    def recipe(self, kind: str, name: str) -> str:
        """``lavis/projects/<family>/<kind>/<name>``, ``kind`` train or eval."""
        if kind not in ("train", "eval"):
            raise ValueError(f"recipe kind {kind!r}: expected 'train' or 'eval'")
        return f"lavis/projects/{self.family}/{kind}/{name}"

    @property
    def readme(self) -> str:
        return f"projects/{self.project or self.family}/README.md"

    def model_module(self, name: str) -> str:
        """The dotted module of ``<models>/<name>.py``."""
        return f"{self.models}/{name}".replace("/", ".")

    def config_entry(self, name: str) -> str:
        """A ``PRETRAINED_MODEL_CONFIG_DICT`` value: relative to the ``lavis`` package."""
        return f"configs/models/{self.family}/{name}"


def host_text(host_src: Path, relative: str) -> str:
    """A file of the LAVIS source tree; its absence names ``--host-src``."""
    path = Path(host_src) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"--host-src {host_src}: {relative} is missing; pass a LAVIS 1.0.2 source tree "
            "(a git checkout or the extracted salesforce-lavis sdist)"
        )
    return path.read_text(encoding="utf-8")


def register_import(text: str, relative: str, module: str, names: list[str]) -> str:
    """A LAVIS package ``__init__.py`` (``relative``) with ``from <module> import <names>``
    after its last import from the same package and ``names`` appended to ``__all__``.

    Raises:
        ValueError: the file has no ``__all__`` list.
    """
    package = ".".join(module.split(".")[:2])  # lavis.models, lavis.tasks...
    line = f"from {module} import {', '.join(names)}\n"
    if line in text:
        raise ValueError(f"{relative}: already imports {', '.join(names)} from {module}")
    text = insert_after_last(text, lambda row: row.startswith(f"from {package}."), line)
    tree = ast.parse(text)
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, ast.List)
        ):
            lines = text.splitlines(keepends=True)
            closing = node.value.end_lineno - 1  # the line holding "]"
            added = "".join(f'    "{name}",\n' for name in names)
            if lines[closing].strip() == "]":
                return "".join(lines[:closing]) + added + "".join(lines[closing:])
            # a one-line list: rewritten with the names appended
            items = [ast.literal_eval(e) for e in node.value.elts] + list(names)
            start = node.lineno - 1
            listing = "__all__ = [" + ", ".join(f'"{i}"' for i in items) + "]\n"
            return "".join(lines[:start]) + listing + "".join(lines[node.end_lineno :])
    raise ValueError(f"{relative}: no __all__ list to add {', '.join(names)} to")


def _class_node(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise KeyError(f"no class {name!r}")


def _replace_lines(text: str, edits: list[tuple[int, int, str]]) -> str:
    """``text`` with lines ``first..last`` (1-based, inclusive) replaced, bottom first."""
    lines = text.splitlines(keepends=True)
    for first, last, new in sorted(edits, reverse=True):
        lines[first - 1 : last] = [new] if new else []
    return "".join(lines)


def set_model_configs(
    text: str, path: str, configs: dict[str, dict[str, str]], drop_methods=()
) -> str:
    """Each class of ``configs`` gets ``PRETRAINED_MODEL_CONFIG_DICT`` = its table
    (``{model_type: "configs/models/<family>/<file>.yaml"}``, LAVIS's relative form), and
    loses the methods named in ``drop_methods`` (plugzoo overrides of LAVIS's lookup).

    Raises:
        ExportRefused: a class lacks the attribute to replace.
    """
    tree = ast.parse(text)
    edits, problems = [], []
    for class_name, table in configs.items():
        node = _class_node(tree, class_name)
        found = False
        for item in node.body:
            if isinstance(item, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "PRETRAINED_MODEL_CONFIG_DICT"
                for t in item.targets
            ):
                indent = " " * item.col_offset
                body = "".join(f'{indent}    "{k}": "{v}",\n' for k, v in table.items())
                new = f"{indent}PRETRAINED_MODEL_CONFIG_DICT = {{\n{body}{indent}}}\n"
                edits.append((item.lineno, item.end_lineno, new))
                found = True
            elif isinstance(item, ast.FunctionDef) and item.name in drop_methods:
                first = min([item.lineno] + [d.lineno for d in item.decorator_list])
                edits.append((first, item.end_lineno, ""))
        if not found:
            problems.append(
                f"{path}:{node.lineno}: {class_name} has no PRETRAINED_MODEL_CONFIG_DICT"
            )
    if problems:
        raise ExportRefused(path, problems)
    return _replace_lines(text, edits)


def drop_unused_imports(before: str, after: str) -> str:
    """``after`` without the module-level imports that ``before`` used and ``after`` no
    longer does (left over when the rewrite removed their only user)."""

    def used(text: str) -> set[str]:
        return {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name)}

    still, was = used(after), used(before)
    tree = ast.parse(after)
    edits = []
    for node in tree.body:
        if not isinstance(node, ast.Import | ast.ImportFrom) or (
            isinstance(node, ast.ImportFrom) and node.module == "__future__"
        ):
            continue
        bound = [(a, (a.asname or a.name).split(".")[0]) for a in node.names]
        kept = [a for a, name in bound if name in still or name not in was]
        if len(kept) == len(node.names):
            continue
        if not kept:
            edits.append((node.lineno, node.end_lineno, ""))
            continue
        if isinstance(node, ast.ImportFrom):
            statement = ast.ImportFrom(module=node.module, names=kept, level=node.level)
        else:
            statement = ast.Import(names=kept)
        edits.append((node.lineno, node.end_lineno, ast.unparse(statement) + "\n"))
    return _replace_lines(after, edits)


def rewrite_model_file(
    text: str,
    path: str,
    rules: PythonRules,
    provenance: str,
    configs: dict[str, dict[str, str]] | None = None,
    drop_methods=(),
) -> str:
    """A plugzoo model file as a LAVIS file: model-config tables in LAVIS's form
    (:func:`set_model_configs`), imports mapped and glue removed (``rules``, whose
    ``glue`` names the path constants), imports left unused dropped, LAVIS's header.

    Raises:
        ExportRefused: something still depends on plugzoo or on Python newer than 3.7.
    """
    if configs or drop_methods:
        text = set_model_configs(text, path, configs or {}, drop_methods)
    rewritten = rewrite_python(text, path, rules)
    return python_header(drop_unused_imports(text, rewritten), provenance)


@dataclass(frozen=True)
class ConfigRules:
    """How plugzoo's LAVIS yaml becomes a LAVIS recipe or model config.

    Keys are dotted paths (``run.runner``); ``*`` matches any one key
    (``datasets.*.bad_image_policy``).

    Attributes:
        drop: keys removed (plugzoo's own: its tasks', builders' and runner's options).
        values: key -> ``{plugzoo value: LAVIS value}`` (registry names plugzoo adds).
        rename: parent key -> ``{plugzoo child: LAVIS child}`` (dataset builder names).
        set: key -> value written whatever the source held (output folders, model types).
        forbidden: words that must not remain (registry names LAVIS lacks), besides
            plugzoo's own words.
    """

    drop: tuple[str, ...] = ()
    values: dict[str, dict] = field(default_factory=dict)
    rename: dict[str, dict[str, str]] = field(default_factory=dict)
    set: dict[str, object] = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()


def _matches(pattern: str, key: str) -> bool:
    wanted, parts = pattern.split("."), key.split(".")
    if len(wanted) != len(parts):
        return False
    return all(w in ("*", p) for w, p in zip(wanted, parts, strict=True))


def _convert(node, rules: ConfigRules, prefix: str):
    if not isinstance(node, dict):
        return node
    out = {}
    renames = rules.rename.get(prefix, {})
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key == "custom_imports" or any(_matches(p, dotted) for p in rules.drop):
            continue
        value = _convert(value, rules, dotted)
        for pattern, table in rules.values.items():
            if _matches(pattern, dotted) and not isinstance(value, dict) and value in table:
                value = table[value]
        out[renames.get(key, key)] = value
    return out


def _set(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config.setdefault(key, {})
    config[last] = value


def convert_config(source: Path, rules: ConfigRules, provenance: str, relative: str) -> str:
    """plugzoo's yaml ``source`` as the LAVIS yaml ``relative``: ``custom_imports`` and
    ``rules.drop`` removed, values and keys mapped, ``rules.set`` written, LAVIS's header.

    Raises:
        ExportRefused: a line still names plugzoo, its environment variables or a word of
            ``rules.forbidden``.
    """
    loaded = OmegaConf.to_container(OmegaConf.load(source), resolve=False)
    config = _convert(loaded, rules, "")
    for dotted, value in rules.set.items():
        _set(config, dotted, value)
    text = yaml_header(provenance) + OmegaConf.to_yaml(OmegaConf.create(config), sort_keys=False)
    problems = [
        f"{relative}:{line}: {what} (from {source})"
        for line, what in text_mentions(text, allowed=(provenance, COPYRIGHT))
    ]
    for number, line in enumerate(text.splitlines(), 1):
        if provenance in line or COPYRIGHT in line:
            continue
        for word in (*CONFIG_WORDS, *rules.forbidden):
            if word in line:
                problems.append(f"{relative}:{number}: mentions {word!r}: {line.strip()}")
    if problems:
        raise ExportRefused(relative, problems)
    return text


def check_tree(tree: ExportTree, provenance: str, paper: str) -> None:
    """Refuse if a non-Python file of ``tree`` names plugzoo outside the provenance line
    (Python files are checked while rewritten)."""
    problems = [
        f"{relative}:{line}: {what}"
        for relative, text in sorted(tree.files.items())
        if not relative.endswith(".py")
        for line, what in text_mentions(text, allowed=(provenance, COPYRIGHT))
    ]
    if problems:
        raise ExportRefused(paper, problems)


__all__ = [
    "COPYRIGHT",
    "ConfigRules",
    "LavisLayout",
    "check_tree",
    "convert_config",
    "drop_unused_imports",
    "header_lines",
    "host_text",
    "python_header",
    "register_import",
    "rewrite_model_file",
    "set_model_configs",
    "yaml_header",
]


# ---- BagFormer ---------------------------------------------------------------------------
BAGFORMER = LavisLayout("bagformer")
BAGFORMER_PROVENANCE = (
    "written for plugzoo from the paper arXiv 2212.14322; where the paper is silent, "
    "behaviour matched to the authors' released code, from which no code is copied"
)
BAGFORMER_PAPER = "https://arxiv.org/abs/2212.14322"
BAGFORMER_SOURCES = {
    "retrieval_ext/models/bagformer.py": f"{BAGFORMER.models}/bagformer_retrieval.py",
    "retrieval_ext/models/bagging.py": f"{BAGFORMER.models}/bagging.py",
}
BAGFORMER_RULES = PythonRules(
    module_map={
        "retrieval_ext.models.bagging": BAGFORMER.model_module("bagging"),
        "retrieval_ext.models.bagformer": BAGFORMER.model_module("bagformer_retrieval"),
    },
    glue=frozenset({"DEFAULTS"}),  # plugzoo's absolute path of its default config
    text_map={
        "retrieval_ext.models.bagging": BAGFORMER.model_module("bagging"),
        "tools/data/lavis/bagformer_dictionary.py": BAGFORMER.readme,
    },
)
BAGFORMER_DEFAULTS = "bagformer_retrieval_base.yaml"
BAGFORMER_MODEL_CONFIGS = {
    "BagFormerRetrieval": {"base": BAGFORMER.config_entry(BAGFORMER_DEFAULTS)},
}
# ALBEF's pre-training checkpoint as LAVIS's own ALBEF configs name it
ALBEF_PRETRAINED = "https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth"
# the preprocessing LAVIS's model configs carry for load_model_and_preprocess
BAGFORMER_PREPROCESS = {
    "vis_processor": {
        "train": {"name": "blip_image_train", "image_size": 256},
        "eval": {"name": "blip_image_eval", "image_size": 256},
    },
    "text_processor": {"train": {"name": "blip_caption"}, "eval": {"name": "blip_caption"}},
}
# plugzoo's keys LAVIS does not read, and the registry names plugzoo adds
_PLUGZOO_RUN_KEYS = ("run.score_sets", "run.select_on", "datasets.*.bad_image_policy")
_LAVIS_NAMES = {
    "run.runner": {"runner_portable": "runner_base"},
    "run.lr_sched": {"linear_warmup_cosine_group_lr": "linear_warmup_cosine_lr"},
    "run.task": {"image_text_retrieval": "retrieval"},
    "model.pretrained": {"data/albef/ALBEF.pth": ALBEF_PRETRAINED},
}
_FORBIDDEN = (
    "runner_portable",
    "linear_warmup_cosine_group_lr",
    "image_text_retrieval",
    "package:",
)
BAGFORMER_MODEL_RULES = ConfigRules(
    drop=("model.tokenizer", "model.model_type"),  # empty tokenizer: ALBEF's bert-base-uncased
    set={"preprocess": BAGFORMER_PREPROCESS},
    forbidden=_FORBIDDEN,
)
# plugzoo recipe -> (LAVIS recipe, dataset builder, output folder); MUGE has no LAVIS
# builder and the embedded data is plugzoo's generated set, so neither is exported
BAGFORMER_RECIPES = {
    "coco_karpathy.yaml": ("ret_coco", "coco_retrieval", "Retrieval_COCO"),
    "flickr30k.yaml": ("ret_flickr30k", "flickr30k", "Retrieval_Flickr30k"),
}
BAGFORMER_DATASETS = {
    "coco_karpathy_image_text": "coco_retrieval",
    "flickr30k_image_text": "flickr30k",
}
DEPENDENCY = "pyahocorasick"  # bagging.py's Aho-Corasick automaton over token ids


def bagformer_recipe_rules(output: str, evaluate: bool) -> ConfigRules:
    """How a plugzoo BagFormer recipe becomes a LAVIS train (or eval) recipe: LAVIS's
    runner, schedule and ``retrieval`` task, which reports the ``merge`` score set."""
    settings = {
        "model.model_type": "base",
        "run.score_set": "merge",
        "run.output_dir": f"output/BagFormer/{output}",
    }
    if evaluate:  # no released checkpoint: the user names the one training wrote
        settings.update({"model.load_finetuned": True, "model.finetuned": "", "run.evaluate": True})
    return ConfigRules(
        drop=("model.tokenizer", *_PLUGZOO_RUN_KEYS),
        values=_LAVIS_NAMES,
        rename={"datasets": BAGFORMER_DATASETS},
        set=settings,
        forbidden=_FORBIDDEN,
    )


BAGFORMER_TEST = '''"""bagformer_retrieval offline: a tiny model from the registry, a training
loss, the score sets of its evaluation (no downloads: a generated vocabulary and dictionary)."""

import torch
from omegaconf import OmegaConf

from lavis.common.registry import registry

WORDS = ["a", "red", "blue", "fire", "truck", "dog", "on", "the", "grass", "tower"]
CAPTIONS = ["a red fire truck", "a blue dog on the grass", "the fire tower", "a red dog"]


def tiny_config(tmp_path, **overrides):
    vocab = tmp_path / "vocab.txt"
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab.write_text("\\n".join(specials + WORDS) + "\\n")
    dictionary = tmp_path / "entities.txt"
    dictionary.write_text("fire truck\\nred fire\\nthe grass\\n")
    cfg = {
        "arch": "bagformer_retrieval",
        "tokenizer": str(vocab),
        "entity_dictionary": str(dictionary),
        "vit_type": "custom",
        "image_size": 32,
        "vit_patch_size": 8,
        "vit_width": 32,
        "vit_depth": 1,
        "vit_heads": 2,
        "med_config_path": "configs/models/med_config_albef.json",
        "med_config_overrides": {
            "vocab_size": len(specials) + len(WORDS),
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "fusion_layer": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "encoder_width": 32,
            "max_position_embeddings": 16,
        },
        "embed_dim": 16,
        "max_txt_len": 12,
    }
    cfg.update(overrides)
    return OmegaConf.create(cfg)


class Gallery:
    """The evaluation dataset's part compute_sim_matrix reads: captions, image count."""

    def __init__(self, texts, images):
        self.text, self.image = texts, list(range(images))

    def __len__(self):
        return len(self.image)


class Loader(list):
    """Image batches over a gallery, as LAVIS's evaluation loader yields them."""

    def __init__(self, batches, dataset):
        super().__init__(batches)
        self.dataset = dataset


def test_bagformer_trains_and_scores(tmp_path):
    torch.manual_seed(0)
    model_class = registry.get_model_class("bagformer_retrieval")
    assert model_class is not None
    for interaction in ("bagwise", "tokenwise", "cls_token"):
        model = model_class.from_config(tiny_config(tmp_path, interaction=interaction))
        samples = {
            "image": torch.randn(4, 3, 32, 32),
            "text_input": CAPTIONS,
            "image_id": torch.tensor([0, 1, 2, 3]),
        }
        output = model(samples)
        assert torch.isfinite(output.loss)
        output.loss.backward()
        model.eval()
        loader = Loader([{"image": torch.randn(2, 3, 32, 32)}] * 2, Gallery(CAPTIONS, 4))
        task_cfg = OmegaConf.create({"k_test": 2})
        score_sets = model.compute_sim_matrix(loader, task_cfg)
        assert set(score_sets) == {"recall", "rank", "merge", "cls"}
        for i2t, t2i in score_sets.values():
            assert i2t.shape == (4, 4) and t2i.shape == (4, 4)
        task_cfg.score_set = "merge"  # LAVIS's retrieval task reads one pair
        i2t, t2i = model.compute_sim_matrix(loader, task_cfg)
        assert (i2t == score_sets["merge"][0]).all()
'''


def _bagformer_readme(recipes: list[str]) -> str:
    """``projects/bagformer/README.md`` in the form of LAVIS's paper pages."""
    lines = [
        "# BagFormer: Better Cross-Modal Retrieval via Bag-wise Interaction",
        "",
        f"[Paper]({BAGFORMER_PAPER})",
        "",
        "BagFormer is a dual encoder for image-text retrieval on ALBEF's parts. A caption's "
        "tokens are grouped into bags (an entity of a dictionary is one bag, every other word "
        "piece a bag of its own) and scored against the image's tokens by bag-wise late "
        "interaction (MaxSim). Training adds a bag-wise contrastive loss to ALBEF's "
        "image-text alignment and matching losses; inference offers the bag-wise recall, "
        "the re-rank of its top `k_test` by the fusion encoder, and their sum (`merge`).",
        "",
        "This implementation was written from the paper (only its abstract was available) "
        "and from reading how the authors' released code behaves where the abstract is "
        "silent (the bag rule, the empty bag between adjacent entities, the masked bags); "
        "that code carries no licence and none of it was copied. "
        f"Provenance: {BAGFORMER_PROVENANCE}. No checkpoint is released with it.",
        "",
        "## Install",
        "",
        "```bash",
        "pip install -e .   # LAVIS, with pyahocorasick (the bagging layer's automaton)",
        "```",
        "",
        "## Entity dictionary",
        "",
        "`model.entity_dictionary` is a UTF-8 file, one phrase per line; it has no default. "
        "Build one from your training captions (frequent collocations, e.g. with NLTK's "
        "collocation finders) or from a noun-phrase list. `model.bag_rule: official` matches "
        "as the paper's released code does (a 3+-token entity needs each of its 2+-token "
        "prefixes in the dictionary, the leftmost match wins, an empty bag between two "
        "adjacent entities counts); `longest` takes the longest entity at each position.",
        "",
        "## Model Zoo",
        "",
        "```python",
        "from omegaconf import OmegaConf",
        "from lavis.common.registry import registry",
        "",
        'model_class = registry.get_model_class("bagformer_retrieval")',
        'cfg = OmegaConf.load(model_class.default_config_path("base")).model',
        'cfg.entity_dictionary = "entities.txt"',
        "model = model_class.from_config(cfg)  # ALBEF's pre-trained weights, bert-base-uncased",
        "```",
        "",
        '`load_model("bagformer_retrieval", "base")` stops asking for '
        "`model.entity_dictionary`: a bag-wise model needs your dictionary. "
        "`model.interaction` selects the paper's ablations: `bagwise` (BagFormer), "
        '`tokenwise` (every token a bag: "w/o bagging layer") and `cls_token` (no late '
        'interaction: "w/o late interaction").',
        "",
        "## Training and evaluation",
        "",
        "```bash",
        *[
            f"python -m torch.distributed.run --nproc_per_node=8 train.py --cfg-path "
            f"{BAGFORMER.recipe('train', name + '_ft.yaml')}"
            for name in recipes
        ],
        *[
            f"python -m torch.distributed.run --nproc_per_node=8 evaluate.py --cfg-path "
            f"{BAGFORMER.recipe('eval', name + '_eval.yaml')} --options "
            "model.finetuned=CHECKPOINT"
            for name in recipes
        ],
        "```",
        "",
        "LAVIS's `retrieval` task reports one score set, `run.score_set` (`merge` in these "
        "recipes; `recall`, `rank` or `cls` also). Called without it, "
        "`compute_sim_matrix` returns all four as `{name: (i2t, t2i)}`.",
        "",
        "## Results",
        "",
        "None yet: these recipes have not been run on COCO or Flickr30k. The implementation "
        "was checked on small generated image-text data only.",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@article{hou2022bagformer,",
        "  title   = {BagFormer: Better Cross-Modal Retrieval via bag-wise interaction},",
        "  author  = {Hou, Haowen and Yan, Xiaopeng and Zhang, Yigeng and Lian, Fengzong and "
        "Kang, Zhanhui},",
        "  journal = {arXiv preprint arXiv:2212.14322},",
        "  year    = {2022}",
        "}",
        "```",
    ]
    return "\n".join(lines) + "\n"


def export_bagformer(host_src: Path, repo: Path = REPO_ROOT, formatted: bool = True) -> ExportTree:
    """The LAVIS tree of BagFormer against the LAVIS source ``host_src``: the model family,
    its default config, COCO and Flickr30k recipes, the registration, the paper page, an
    offline test, and ``pyahocorasick`` in ``requirements.txt``.

    Raises:
        ExportRefused: something exported would still depend on plugzoo or on Python > 3.7.
        FileNotFoundError: ``host_src`` is not a LAVIS source tree.
    """
    from plugins.export.recbole import format_python  # black at 88 columns, as LAVIS's hook

    host_src = Path(host_src)
    tree = ExportTree(paper="bagformer", host="lavis")
    problems: list[str] = []
    for source, target in BAGFORMER_SOURCES.items():
        try:
            tree.files[target] = rewrite_model_file(
                (repo / source).read_text(encoding="utf-8"),
                source,
                BAGFORMER_RULES,
                BAGFORMER_PROVENANCE,
                configs=BAGFORMER_MODEL_CONFIGS if source.endswith("bagformer.py") else None,
            )
        except ExportRefused as refused:
            problems.extend(refused.problems)
    if problems:
        raise ExportRefused("bagformer", problems)
    tree.files[f"{BAGFORMER.models}/__init__.py"] = python_header(
        '"""BagFormer: bag-wise late interaction on ALBEF\'s parts."""\n', BAGFORMER_PROVENANCE
    )
    init = "lavis/models/__init__.py"
    tree.files[init] = register_import(
        host_text(host_src, init),
        init,
        BAGFORMER.model_module("bagformer_retrieval"),
        ["BagFormerRetrieval"],
    )
    requirements = host_text(host_src, "requirements.txt")
    tree.files["requirements.txt"] = requirements.rstrip("\n") + f"\n{DEPENDENCY}\n"

    defaults = f"{BAGFORMER.model_configs}/{BAGFORMER_DEFAULTS}"
    tree.files[defaults] = convert_config(
        repo / "retrieval_ext/configs/models" / BAGFORMER_DEFAULTS,
        BAGFORMER_MODEL_RULES,
        BAGFORMER_PROVENANCE,
        defaults,
    )
    for source, (name, _, output) in BAGFORMER_RECIPES.items():
        for kind in ("train", "eval"):
            suffix = "_ft.yaml" if kind == "train" else "_eval.yaml"
            target = BAGFORMER.recipe(kind, name + suffix)
            tree.files[target] = convert_config(
                repo / "configs/lavis/bagformer" / source,
                bagformer_recipe_rules(output, evaluate=kind == "eval"),
                BAGFORMER_PROVENANCE,
                target,
            )
    tree.files[BAGFORMER.readme] = _bagformer_readme(
        [name for name, _, _ in BAGFORMER_RECIPES.values()]
    )
    tree.files["tests/models/test_bagformer.py"] = python_header(
        BAGFORMER_TEST, BAGFORMER_PROVENANCE
    )
    check_tree(tree, BAGFORMER_PROVENANCE, "bagformer")
    if formatted:  # new files only: LAVIS's own files keep their formatting in the diff
        new = {k: v for k, v in tree.files.items() if not (host_src / k).is_file()}
        tree.files.update(format_python(new))
    return tree
