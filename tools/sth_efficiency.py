"""STH efficiency against MMAction2's TSM and TSN, measured in one run on this machine.

For ResNetSTH-50 at r = 1/8, 1/4, 1/2 (G = 8 and 4), ResNetTSM-50 (also run in
channels-last layout, for reference) and TSN's ResNet-50,
each with a 174-class head (Something-Something): parameters, FLOPs (mmengine's
complexity analysis; 1 multiply-add = 1 FLOP), CPU inference clips/s at 8x224x224 for
batch 1 and 8 (median of interleaved repeats), the peak resident-memory increase of a batch-8
forward (a fresh process per model, sampled every 2 ms), and the throughput ratio against TSM.

    python tools/sth_efficiency.py [--repeats 5] [--size 224] [--out runs/sth_efficiency]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = {
    "TSN-R50": dict(type="ResNet", depth=50, pretrained=None),
    "TSM-R50": dict(
        type="ResNetTSM", depth=50, pretrained=None, pretrained2d=False, num_segments=8, shift_div=8
    ),
    # reference: TSM with the whole network in channels-last memory layout (STHConv hands
    # channels-last tensors to the layers after it, so part of its speed may come from there)
    "TSM-R50 channels-last": dict(
        type="ResNetTSM", depth=50, pretrained=None, pretrained2d=False, num_segments=8, shift_div=8
    ),
    "STH-R50 r=1/8": dict(
        type="ResNetSTH", depth=50, pretrained=None, num_segments=8, num_groups=8, temporal_groups=1
    ),
    "STH-R50 r=1/4": dict(
        type="ResNetSTH", depth=50, pretrained=None, num_segments=8, num_groups=4, temporal_groups=1
    ),
    "STH-R50 r=1/2": dict(
        type="ResNetSTH", depth=50, pretrained=None, num_segments=8, num_groups=4, temporal_groups=2
    ),
}
NUM_SEGMENTS = 8


def build(name: str):
    """Backbone + TSMHead (TSNHead for TSN) as one eval-mode module taking frames."""
    import mmaction_ext  # noqa: F401

    import torch
    from mmaction.registry import MODELS as REGISTRY

    backbone = REGISTRY.build(dict(MODELS[name]))
    backbone.init_weights()
    head_cfg = dict(
        num_classes=174,
        in_channels=2048,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.5,
    )
    if name.startswith("TSN"):
        head = REGISTRY.build(dict(type="TSNHead", **head_cfg))
    else:
        head = REGISTRY.build(
            dict(type="TSMHead", num_segments=NUM_SEGMENTS, is_shift=True, **head_cfg)
        )

    class Recognizer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.cls_head = backbone, head

        def forward(self, frames):
            if channels_last:
                frames = frames.contiguous(memory_format=torch.channels_last)
            return self.cls_head(self.backbone(frames), num_segs=NUM_SEGMENTS)

    channels_last = name.endswith("channels-last")
    model = Recognizer().eval()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def peak_memory_child(name: str, batch: int, size: int) -> None:
    """Print the peak RSS increase of one batch forward, sampled every 2 ms."""
    import threading

    import psutil
    import torch

    torch.set_num_threads(2)
    model = build(name)
    frames = torch.randn(batch * NUM_SEGMENTS, 3, size, size)
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak, done = [baseline], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with torch.no_grad():
        model(frames)
    done.set()
    sampler.join()
    print(json.dumps({"forward_peak_mb": (peak[0] - baseline) / 2**20}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--out", type=Path, default=Path("runs/sth_efficiency"))
    parser.add_argument("--_peak", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._peak:
        peak_memory_child(args._peak[0], int(args._peak[1]), int(args._peak[2]))
        return 0

    import torch
    from mmengine.analysis import get_model_complexity_info
    from tabulate import tabulate

    torch.set_num_threads(2)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{NUM_SEGMENTS}x{args.size}x{args.size} clips",
        flush=True,
    )
    models = {name: build(name) for name in MODELS}
    rows = {name: {"model": name} for name in MODELS}
    for name, model in models.items():
        info = get_model_complexity_info(
            model,
            inputs=(torch.randn(NUM_SEGMENTS, 3, args.size, args.size),),
            show_table=False,
            show_arch=False,
        )
        rows[name]["params_M"] = sum(p.numel() for p in model.parameters()) / 1e6
        rows[name]["GFLOPs"] = info["flops"] / 1e9
        print(
            f"  {name}: {rows[name]['params_M']:.2f} M params, {rows[name]['GFLOPs']:.2f} GFLOPs",
            flush=True,
        )

    with torch.no_grad():
        for batch in args.batches:
            frames = torch.randn(batch * NUM_SEGMENTS, 3, args.size, args.size)
            times = {name: [] for name in models}
            for model in models.values():  # warm-up
                model(frames)
            for repeat in range(args.repeats):  # interleaved, so drift hits every model
                for name, model in models.items():
                    start = time.perf_counter()
                    model(frames)
                    times[name].append(time.perf_counter() - start)
                print(f"  batch {batch}: repeat {repeat + 1}/{args.repeats}", flush=True)
            for name in models:
                rows[name][f"clips/s b{batch}"] = batch / statistics.median(times[name])

    for name in models:
        child = subprocess.run(
            [sys.executable, __file__, "--_peak", name, str(max(args.batches)), str(args.size)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak = json.loads(child.stdout.strip().splitlines()[-1])
        rows[name][f"fwd peak MB b{max(args.batches)}"] = peak["forward_peak_mb"]
        print(f"  {name}: forward peak +{peak['forward_peak_mb']:.0f} MB RSS", flush=True)

    tsm = rows["TSM-R50"]
    for row in rows.values():
        for batch in args.batches:
            row[f"vs TSM b{batch}"] = row[f"clips/s b{batch}"] / tsm[f"clips/s b{batch}"]
    table = list(rows.values())
    print()
    print(tabulate(table, headers="keys", floatfmt=".3f"))
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "settings": {
            "size": args.size,
            "num_segments": NUM_SEGMENTS,
            "repeats": args.repeats,
            "batches": args.batches,
            "threads": torch.get_num_threads(),
            "models": MODELS,
        },
        "rows": table,
    }
    (args.out / "sth_efficiency.json").write_text(json.dumps(result, indent=2))
    (args.out / "sth_efficiency.md").write_text(
        tabulate(table, headers="keys", floatfmt=".3f", tablefmt="github") + "\n"
    )
    print(f"\nwritten: {args.out / 'sth_efficiency.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
