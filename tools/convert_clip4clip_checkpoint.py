"""Convert an official CLIP4Clip checkpoint (``pytorch_model.bin``) to retrieval_ext's names.

    python tools/convert_clip4clip_checkpoint.py --input ckpts/pytorch_model.bin.4 \
        --output checkpoints/clip4clip_msrvtt_seqTransf.pth --max-frames 12

The output is ``{"model": state_dict, "converted_from": <input>}``, loaded with
``model.load_finetuned=true model.finetuned=<output>``; ``model.finetuned`` also takes the
official file directly (converted on load). Loading uses ``torch.load(weights_only=True)``.
"""

import argparse
from pathlib import Path

from retrieval_ext.models.clip4clip import convert_official_state_dict, is_official_state_dict

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="official pytorch_model.bin")
    parser.add_argument("--output", required=True, help="converted checkpoint (.pth)")
    parser.add_argument(
        "--max-frames", type=int, default=12, help="model.max_frames of the config it serves"
    )
    args = parser.parse_args(argv)
    source = Path(args.input)
    if not source.is_file():
        parser.error(f"--input {source}: no such file")
    state = torch.load(str(source), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not any(k.startswith("clip.") for k in state):
        parser.error(f"--input {source}: not a CLIP4Clip state dict (no 'clip.*' keys)")
    if is_official_state_dict(state):
        state = convert_official_state_dict(state, args.max_frames)
    else:  # meanP: only CLIP's weights, already in our names
        state = {k.removeprefix("module."): v.float() for k, v in state.items()}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "converted_from": str(source)}, args.output)
    print(f"wrote {args.output}: {len(state)} tensors")


if __name__ == "__main__":
    main()
