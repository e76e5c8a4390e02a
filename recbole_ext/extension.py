"""Declaration read by plugzoo's discovery (entry point ``plugzoo.plugins: recbole``)."""

from plugins.catalogue import Extension, Plugin

UPSR = Plugin(
    name="UPSR",
    paper="arXiv 2310.13540",
    registry_names={"recbole.model": ["UPSR"]},
    configs=[
        "configs/recbole/upsr_text.yaml",
        "configs/recbole/upsr_text_amazon.yaml",
        "configs/recbole/upsr_ml100k.yaml",
    ],
    commands={"upsr-text": "recbole_ext.text.report:main"},
    demo_stage="recbole_ext.demo:upsr_stage",
    arxiv="2310.13540",
    readme="configs/recbole/upsr/README.md",
    status=(
        "accuracy claim not reproduced: NDCG@10 0.0186 on all of ML-100K with one "
        "pre-trained stack against SASRec's 0.0660, below RecBole's Pop (0.0224) and "
        "ItemKNN (0.0283); it passes its shuffled-history control in two seeds of three"
    ),
)

EXTENSION = Extension(
    name="recbole_ext",
    host="recbole",
    host_module="recbole",
    plugins=(UPSR,),
    baseline_stage="recbole_ext.demo:sasrec_baseline",
    host_title="RecBole",
)
