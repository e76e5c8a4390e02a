"""Export a model's video and caption embeddings for a split, then search them with FAISS.

    python tools/analysis_tools/retrieval_export.py \
        --cfg-path configs/lavis/clip4clip/embedded_meanP.yaml \
        --out runs/embeddings/embedded_test --split test \
        --options model.load_finetuned=true model.finetuned=<run>/checkpoint_best.pth

Writes videos.npy, texts.npy, meta.json (retrieval_ext/index.py) and prints the task's
metrics computed from the dense similarity matrix and through FAISS's exact and IVF
indexes, as JSON.
"""

import argparse
import json

from retrieval_ext.index import export_embeddings, index_metrics
from retrieval_ext.launch import build
from retrieval_ext.tasks.text_video_retrieval import retrieval_metrics

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg-path", required=True)
    parser.add_argument("--out", required=True, help="folder for the embeddings")
    parser.add_argument("--split", default="test")
    parser.add_argument("--options", nargs="+", default=[], help="overrides, key=value")
    args = parser.parse_args(argv)
    cfg, _, model, _, runner = build(args.cfg_path, args.options, evaluate=True)
    if args.split not in runner.dataloaders:
        raise SystemExit(
            f"split {args.split!r} not in the config; have {sorted(runner.dataloaders)}"
        )
    model = runner.unwrap_dist_model(runner.model)
    folder = export_embeddings(model, runner.dataloaders[args.split], args.out, cfg.to_dict())
    dataset = runner.dataloaders[args.split].dataset
    videos, texts = np.load(folder / "videos.npy"), np.load(folder / "texts.npy")
    report = {
        "out": str(folder),
        "videos": int(videos.shape[0]),
        "texts": int(texts.shape[0]),
        "dense": retrieval_metrics(texts @ videos.T, dataset.txt2video, dataset.video2txt),
        "faiss_flat": index_metrics(videos, texts, dataset.txt2video, dataset.video2txt, "flat"),
        "faiss_ivf": index_metrics(videos, texts, dataset.txt2video, dataset.video2txt, "ivf"),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
