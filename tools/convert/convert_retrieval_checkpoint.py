"""Convert an official checkpoint (CLIP4Clip, X-CLIP, X-Pool) to retrieval_ext's names.

    python tools/convert/convert_retrieval_checkpoint.py --arch clip4clip_retrieval \
        --input ckpts/pytorch_model.bin.4 --output checkpoints/clip4clip_msrvtt.pth
    python tools/convert/convert_retrieval_checkpoint.py \
        --arch xclip_retrieval --model-type seqTransf \
        --input xclip/pytorch_model.bin.2 --output checkpoints/xclip_msrvtt.pth
    python tools/convert/convert_retrieval_checkpoint.py --arch xpool_retrieval \
        --input xpool/model_best.pth --output checkpoints/xpool_msrvtt.pth

Reads with ``torch.load(weights_only=True)``; prints the keys with no place in our model
(unplaced), our model's keys the file does not give (missing) and tensors whose shape
differs (a checkpoint of another ``--max-frames`` / ``--max-words``), against the model the
default config of ``--arch`` / ``--model-type`` builds with ``--max-frames`` and
``--max-words`` and ``--options`` (random weights, to list its keys). Writes ``{"model": state_dict,
"converted_from": <input>}`` for ``model.load_finetuned=true model.finetuned=<output>``
(``model.finetuned`` also takes the official file directly). Exits 1 when a key is
unplaced or missing or a shape differs, or when ``--input`` is refused as unsafe or cannot
be read (the message names the file), after writing nothing.
"""

import argparse
import json
import sys
from pathlib import Path

import retrieval_ext  # noqa: F401  (registers the models)

import torch
from omegaconf import OmegaConf

from plugins.compat import lavis_lookup
from plugins.compat.checkpoints import CheckpointLoadError, load_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="registered model name")
    parser.add_argument("--model-type", default=None, help="default: the arch's first")
    parser.add_argument("--input", required=True, help="the official checkpoint")
    parser.add_argument("--output", required=True, help="converted checkpoint (.pth)")
    parser.add_argument("--max-frames", type=int, default=12, help="model.max_frames")
    parser.add_argument("--max-words", type=int, default=32, help="model.max_txt_len")
    parser.add_argument(
        "--options", nargs="*", default=[], help="other model keys, key=value (temporal_layers=4)"
    )
    parser.add_argument(
        "--clip-config", default=None, help="JSON of a small clip_config (tests), else ViT-B/32"
    )
    args = parser.parse_args(argv)
    source = Path(args.input)
    if not source.is_file():
        parser.error(f"--input {source}: no such file")
    model_cls = lavis_lookup("model", args.arch)
    model_type = args.model_type or next(iter(model_cls.PRETRAINED_MODEL_CONFIG_DICT))
    cfg = OmegaConf.load(model_cls.default_config_path(model_type)).model
    cfg.update(pretrained="", max_frames=args.max_frames, max_txt_len=args.max_words)
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(args.options))
    if args.clip_config:
        cfg.clip_config = json.loads(args.clip_config)
    model = model_cls.from_config(cfg)

    try:
        state = load_checkpoint(source, "--input")
    except CheckpointLoadError as error:
        print(f"not written: {error}", file=sys.stderr)
        return 1
    if isinstance(state, dict):
        state = state.get("model", state.get("state_dict", state))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        print(f"not written: --input {source}: not a state dict of tensors", file=sys.stderr)
        return 1
    unplaced = []
    if model.is_official(state):
        state, unplaced = model.convert_official(state, args.max_frames)
    ours = model.state_dict()
    unplaced += sorted(set(state) - set(ours))
    missing = sorted(set(ours) - set(state))
    mismatched = [
        f"{key} {tuple(state[key].shape)} != {tuple(ours[key].shape)}"
        for key in sorted(set(state) & set(ours))
        if state[key].shape != ours[key].shape
    ]
    print(f"{source}: {len(state)} tensors for {args.arch} ({model_type})")
    print(f"  unplaced ({len(unplaced)}): {unplaced[:20]}")
    print(f"  missing ({len(missing)}): {missing[:20]}")
    print(f"  shape mismatches ({len(mismatched)}): {mismatched[:20]}")
    if unplaced or missing or mismatched:
        print("not written: the checkpoint does not match the model", file=sys.stderr)
        return 1
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "converted_from": str(source)}, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
