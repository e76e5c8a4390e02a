"""STH efficiency against MMAction2's TSM and TSN, measured in one run on this machine.

Everything below is measured in the same run, at each thread count of ``--threads``
(default 1 and 2), with interleaved repeats (median), so that load drift hits every
row alike; timings on a shared machine are only meaningful as these ratios. At one
thread the tool also records the thread's CPU time per call (``cpu`` columns): time the
thread spent computing, without the time it waited for a core, so a busy machine
inflates it far less than the wall time (caches and memory bandwidth are still shared).

1. Layer table: STHConv (G=4, r=1/4, 8 frames) against the dense 3x3 conv it replaces
   at every ResNet-50 stage shape (64ch 56x56 ... 512ch 7x7), batch 1 and 8 clips. The
   dense conv runs in NCHW (as in MMAction2's ResNet/ResNetTSM) and in channels-last;
   STHConv runs as inside ResNetSTH (channels-last in and out) and on NCHW input/output,
   with the arrangement ``'auto'`` picks, and in both arrangements (``'grouped'``,
   ``'masked'``) channels-last.
2. Network table: ResNetSTH-50 at r = 1/8, 1/4, 1/2 (G = 8 and 4), ResNetTSM-50 (also
   run whole in channels-last, for reference) and TSN's ResNet-50, each with a
   174-class head (Something-Something): parameters, FLOPs (mmengine's complexity
   analysis; 1 multiply-add = 1 FLOP), inference clips/s at 8x224x224 for batch 1 and 8,
   and the training step (forward + backward of a batch-1 clip, train mode), each as a
   ratio against TSM-R50.
3. The cost of ResNetSTH's NCHW output boundary (channels-last inside), and the peak
   resident-memory increase of a batch-8 forward (a fresh process per model, 2 threads,
   sampled every 2 ms).

    python tools/analysis_tools/sth_efficiency.py [--threads 1 2] [--repeats 5]
        [--layer-repeats 9] [--size 224] [--out runs/sth_efficiency]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from plugins.benchmarking import machine_stamp, set_threads, time_calls, write_results

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


def train_step(model, frames) -> None:
    """Forward and backward of one batch in train mode (BN batch statistics, dropout)."""
    model.train()
    model(frames).sum().backward()
    model.zero_grad(set_to_none=True)


STAGES = [(64, 56), (128, 28), (256, 14), (512, 7)]  # ResNet-50's 3x3 convs: channels, size


def median_ms(calls: dict, repeats: int, cpu: dict | None = None) -> dict:
    """Median wall milliseconds of each zero-argument call, repeats interleaved across
    calls (:func:`plugins.benchmarking.time_calls`); with ``cpu`` (a dict), also the median
    CPU milliseconds of the calling thread (meaningful at one thread, where torch computes
    in this thread) written into it."""
    timings = time_calls(calls, repeats)
    if cpu is not None:
        cpu.update({name: 1e3 * t.cpu_median for name, t in timings.items()})
    return {name: 1e3 * t.median for name, t in timings.items()}


def layer_rows(threads: int, batches, repeats: int) -> list[dict]:
    """STHConv against the dense 3x3 conv at each ResNet-50 stage shape."""
    import mmaction_ext  # noqa: F401
    from mmaction_ext.models import STHConv

    import torch

    rows = []
    for batch in batches:
        for channels, size in STAGES:
            torch.manual_seed(0)
            dense = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            sth = STHConv(channels, channels, num_segments=NUM_SEGMENTS)
            arrangements = {
                name: STHConv(channels, channels, num_segments=NUM_SEGMENTS, arrangement=name)
                for name in ("grouped", "masked")
            }
            x = torch.randn(batch * NUM_SEGMENTS, channels, size, size)
            x_cl = x.contiguous(memory_format=torch.channels_last)
            cpu = {} if threads == 1 else None
            with torch.no_grad():
                ms = median_ms(
                    {
                        "dense NCHW": partial(dense, x),
                        "dense CL": partial(dense, x_cl),
                        "STH CL": partial(sth, x_cl),
                        "STH NCHW": partial(sth, x),
                        **{f"STH {k} CL": partial(m, x_cl) for k, m in arrangements.items()},
                    },
                    repeats,
                    cpu,
                )
            row = {
                "threads": threads,
                "batch": batch,
                "shape": f"{channels}ch {size}x{size}",
                "STH arrangement": sth.arrangement,
                **{f"{k} ms": v for k, v in ms.items()},
                "STH CL / dense NCHW": ms["STH CL"] / ms["dense NCHW"],
                "STH CL / dense CL": ms["STH CL"] / ms["dense CL"],
                "STH NCHW / dense NCHW": ms["STH NCHW"] / ms["dense NCHW"],
            }
            if cpu:
                row.update({f"{k} cpu ms": v for k, v in cpu.items()})
                row["cpu: STH CL / dense NCHW"] = cpu["STH CL"] / cpu["dense NCHW"]
                row["cpu: STH CL / dense CL"] = cpu["STH CL"] / cpu["dense CL"]
            rows.append(row)
            print(f"  layer {row['shape']} b{batch} ({sth.arrangement}): {ms}", flush=True)
    return rows


def boundary_rows(threads: int, batches, size: int, repeats: int) -> list[dict]:
    """What ResNetSTH's channels-last inside / NCHW outside costs: the input and output
    layout copies, against the backbone's forward."""
    import torch

    backbone = build("STH-R50 r=1/4").backbone
    rows = []
    for batch in batches:
        frames = torch.randn(batch * NUM_SEGMENTS, 3, size, size)
        with torch.no_grad():
            feature = backbone(frames).contiguous(memory_format=torch.channels_last)
            ms = median_ms(
                {
                    "backbone forward": partial(backbone, frames),
                    "input to CL": partial(frames.contiguous, memory_format=torch.channels_last),
                    "output to NCHW": feature.contiguous,
                },
                repeats,
            )
        copies = ms["input to CL"] + ms["output to NCHW"]
        rows.append(
            {
                "threads": threads,
                "batch": batch,
                **{f"{k} ms": v for k, v in ms.items()},
                "boundary share": copies / ms["backbone forward"],
            }
        )
    return rows


def peak_memory_child(name: str, batch: int, size: int) -> None:
    """Print the peak RSS increase of one batch forward, sampled every 2 ms."""
    import threading

    import psutil
    import torch

    set_threads(2)
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
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--layer-repeats", type=int, default=9)
    parser.add_argument(
        "--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="network rows"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/sth_efficiency"))
    parser.add_argument("--_peak", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._peak:
        peak_memory_child(args._peak[0], int(args._peak[1]), int(args._peak[2]))
        return 0

    import torch
    from mmengine.analysis import get_model_complexity_info
    from tabulate import tabulate

    machine = machine_stamp()
    print(
        f"torch {torch.__version__}, threads {args.threads}, {NUM_SEGMENTS}x{args.size}x"
        f"{args.size} clips, {os.cpu_count()} CPUs, load average {os.getloadavg()}",
        flush=True,
    )
    models = {name: build(name) for name in args.models}
    rows = {name: {"model": name} for name in args.models}
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

    layers, boundary, loads = [], [], {}
    for threads in args.threads:
        set_threads(threads)
        loads[f"before {threads} threads"] = os.getloadavg()
        layers += layer_rows(threads, args.batches, args.layer_repeats)
        boundary += boundary_rows(threads, args.batches, args.size, args.repeats)
        with torch.no_grad():
            for batch in args.batches:
                frames = torch.randn(batch * NUM_SEGMENTS, 3, args.size, args.size)
                cpu = {} if threads == 1 else None
                ms = median_ms(
                    {name: partial(model, frames) for name, model in models.items()},
                    args.repeats,
                    cpu,
                )
                for name in models:
                    rows[name][f"clips/s b{batch} t{threads}"] = batch / ms[name] * 1e3
                    if cpu:
                        rows[name][f"cpu clips/s b{batch} t{threads}"] = batch / cpu[name] * 1e3
                print(f"  {threads} threads, batch {batch}: {ms}", flush=True)
        frames = torch.randn(NUM_SEGMENTS, 3, args.size, args.size)

        cpu = {} if threads == 1 else None
        ms = median_ms(
            {name: partial(train_step, model, frames) for name, model in models.items()},
            args.train_repeats,
            cpu,
        )
        for name, model in models.items():
            model.eval()
            rows[name][f"train step ms t{threads}"] = ms[name]
            if cpu:
                rows[name][f"cpu train step ms t{threads}"] = cpu[name]
        print(f"  {threads} threads, train step b1: {ms}", flush=True)
    loads["end"] = os.getloadavg()

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
        for threads in args.threads:
            for clock in ("", "cpu ") if threads == 1 else ("",):
                for batch in args.batches:
                    key = f"{clock}clips/s b{batch} t{threads}"
                    row[f"{clock}vs TSM b{batch} t{threads}"] = row[key] / tsm[key]
                key = f"{clock}train step ms t{threads}"
                # > 1: faster than TSM
                row[f"{clock}train vs TSM t{threads}"] = tsm[key] / row[key]
    table = list(rows.values())
    tables = {"layers": layers, "networks": table, "boundary": boundary}
    markdown = []
    for title, content in tables.items():
        print(f"\n{title}")
        print(tabulate(content, headers="keys", floatfmt=".3f"))
        markdown.append(
            f"## {title}\n\n" + tabulate(content, headers="keys", floatfmt=".3f", tablefmt="github")
        )
    print(f"\nload average: {loads}")
    result = {
        "settings": {
            "size": args.size,
            "num_segments": NUM_SEGMENTS,
            "repeats": args.repeats,
            "train_repeats": args.train_repeats,
            "layer_repeats": args.layer_repeats,
            "batches": args.batches,
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "load_average": loads,
            "torch": torch.__version__,
            "models": {name: MODELS[name] for name in args.models},
            "machine": machine,
        },
        **tables,
    }
    write_results(
        args.out,
        result,
        "\n\n".join(markdown) + "\n",
        json_name="sth_efficiency.json",
        markdown_name="sth_efficiency.md",
        indent=2,
    )
    print(f"\nwritten: {args.out / 'sth_efficiency.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
