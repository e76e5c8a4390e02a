"""STH's CPU speed against MMAction2's TSM and TSN, every model under the same treatment,
measured in one run on this machine.

Everything is measured in the same run, at each thread count of ``--threads`` (default 1
and 2), with interleaved repeats (median): one untimed warm-up call of every row, whose
time is printed with an estimate of the group, then rounds that call every row once in
turn, so that load drift hits every row alike. At one thread the thread's CPU time per
call is recorded too (``cpu`` keys: the time it computed, without the time it waited for a
core). Timings on a shared machine are only meaningful as these ratios.

Network tables (ResNet-50 by default, a 174-class head, 8-frame clips; inference clips/s
at each batch of ``--batches``, and the training step: forward and backward of one clip in
train mode, in ms). Each row names its memory format and its inference path.

1. ``shipped``: each model as MMAction2 and plugzoo ship it. TSN and TSM run NCHW with
   plain convs; STH runs channels-last inside with its oneDNN packed weights and fused adds.
2. ``equal``: every model channels-last (model and input), BatchNorm folded into the convs
   (:func:`mmaction_ext.models.fold_batch_norms`) and every plain conv prepacked for oneDNN
   the way STH packs its own (:func:`mmaction_ext.models.prepack_convs`); TSM with the
   temporal shift that keeps channels-last (:class:`~mmaction_ext.models.
   LayoutPreservingTemporalShift`) and, to measure the host shift's layout defect, with
   MMAction2's shift; a TSN row that is channels-last and nothing else. Training steps run
   channels-last (folding and packing are inference-only).
3. ``jit``: every model channels-last, BatchNorm folded (``torch.jit.freeze`` cannot fold
   the BatchNorm after an STH block, whose output is a sum), ``torch.jit.trace`` +
   ``torch.jit.freeze``; STH traced both with ``trace_path='fast'`` (its arrangement in plain
   operators) and ``'counted'`` (its two plain convs). Training step: the traced module in
   train mode.
4. ``inductor`` (with ``--compilers inductor``): ``torch.compile`` (TorchInductor, with
   ``freezing`` at inference), every model channels-last. A model the compiler cannot build
   on this machine (no C compiler, a compile error) gets a row naming the error class.

Every treated model is checked against its shipped model on the same weights (random
BatchNorm statistics and STH temporal taps, so that folding is exercised): the
``max rel diff`` column is the largest output difference over the largest output value.

Ratios ``STH / TSM`` and ``STH / TSN`` (throughput; above 1 STH is faster) are printed per
table. The layer table times STHConv (G=4, r=1/4) against the dense 3x3 conv it replaces
at each ResNet-50 stage shape: NCHW, channels-last, and channels-last with the weight
prepacked as STH's are; STHConv channels-last (as inside ResNetSTH) in its ``'auto'``,
``'grouped'`` and ``'masked'`` arrangements. Then ResNetSTH's layout boundary and the peak
memory of a forward per shipped model.

Every model is built (compilations included) before any timing; with ``--wait-for-load``
the run then sleeps until the machine is quiet, so it can be started beside other work.

``--out`` gets ``sth_efficiency.json`` (every row, the settings, the exact argv and the
machine stamp), ``sth_efficiency.md`` and ``docs_tables.json``: the tables in the format of
``docs/benchmarks/results/<paper>.json`` (``tools/misc/benchmark_tables.py``), to paste.

    python tools/analysis_tools/sth_efficiency.py [--threads 1 2] [--batches 1 8]
        [--repeats 5] [--train-repeats 3] [--layer-repeats 9] [--size 224]
        [--compilers jit inductor] [--out runs/sth_efficiency]
    python tools/analysis_tools/sth_efficiency.py --quick   # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from plugins.benchmarking import machine_stamp, set_threads, time_calls, write_results

NUM_SEGMENTS = 8
BACKBONES = {
    "TSN": dict(type="ResNet", pretrained=None),
    "TSM": dict(type="ResNetTSM", pretrained=None, pretrained2d=False, num_segments=8, shift_div=8),
    # random temporal taps: the same cost as the 'static' zeros, and a real output check
    "STH": dict(
        type="ResNetSTH",
        pretrained=None,
        num_segments=8,
        num_groups=4,
        temporal_groups=1,
        temporal_init="random",
    ),
}
STAGES = [(64, 56), (128, 28), (256, 14), (512, 7)]  # ResNet-50's 3x3 convs at 224x224
QUICK = dict(size=32, depth=18, batches=[1], threads=[1], repeats=1, train_repeats=1)
QUICK.update(layer_repeats=1, compilers=["jit"], peak_memory=False)


# --- models -------------------------------------------------------------------------------


def build(family: str, depth: int, seed: int = 0):
    """Backbone + TSMHead (TSNHead for TSN) as one eval-mode module taking frames, with
    seeded random BatchNorm statistics and affine parameters (so that folding them is a
    real check; the cost does not depend on the values)."""
    import mmaction_ext  # noqa: F401

    import torch
    from mmaction.registry import MODELS

    torch.manual_seed(seed)
    backbone = MODELS.build(dict(BACKBONES[family], depth=depth))
    backbone.init_weights()
    head_cfg = dict(
        num_classes=174,
        in_channels=2048 if depth >= 50 else 512,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.5,
    )
    if family == "TSN":
        head = MODELS.build(dict(type="TSNHead", **head_cfg))
    else:
        head = MODELS.build(
            dict(type="TSMHead", num_segments=NUM_SEGMENTS, is_shift=True, **head_cfg)
        )
    head.init_weights()

    class Recognizer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.cls_head = backbone, head

        def forward(self, frames):
            return self.cls_head(self.backbone(frames), num_segs=NUM_SEGMENTS)

    model = Recognizer()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.0)
                module.bias.normal_(0, 0.1)
    model.eval()
    return model


def channels_last(model, keep_shift_layout: bool = True):
    """A channels-last copy of ``model``; TSM's shifts keep channels-last with
    ``keep_shift_layout``."""
    from mmaction_ext.models import keep_layout_in_temporal_shifts

    import torch

    model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    if keep_shift_layout:
        keep_layout_in_temporal_shifts(model)
    return model


def folded_and_packed(model):
    """A copy of eval-mode ``model`` with BatchNorm folded and every plain conv prepacked."""
    from mmaction_ext.models import fold_batch_norms, prepack_convs

    model = copy.deepcopy(model)
    fold_batch_norms(model)
    prepack_convs(model)
    return model


def jit_traced(model, frames, trace_path: str = "fast", freeze: bool = True):
    """``model`` traced on ``frames`` (STH blocks with ``trace_path``); at inference
    (``freeze``) with BatchNorm folded first and frozen; else traced in train mode."""
    from mmaction_ext.models import fold_batch_norms, set_sth_trace_path

    import torch

    model = copy.deepcopy(model)
    set_sth_trace_path(model, trace_path)
    if not freeze:
        model.train()
        return torch.jit.trace(model, frames, check_trace=False)
    fold_batch_norms(model)
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(model, frames, check_trace=False))


def inductor_compiled(model, frames, freeze: bool = True):
    """``torch.compile(model)`` after its first call on ``frames`` (the compilation):
    with inductor's ``freezing`` for inference; in train mode without."""
    import torch

    model = copy.deepcopy(model)
    if not freeze:
        model.train()
    compiled = torch.compile(model, options={"freezing": freeze})
    if freeze:
        with torch.no_grad():
            compiled(frames)
    else:
        train_step(compiled, frames)
    return compiled


def train_step(model, frames) -> None:
    """Forward and backward of one batch in train mode (BN batch statistics, dropout)."""
    model.train()
    model(frames).sum().backward()
    model.zero_grad(set_to_none=True)


class Row:
    """One network row: how its modules are made from the shipped model and the frames
    (``make_inference``, ``make_training``), and what was measured. (A plain class: the
    tests load this script without registering it as a module, which dataclasses need.)"""

    def __init__(
        self,
        table: str,
        model: str,
        family: str,
        memory_format: str,
        inference: str,
        training: str,
        make_inference,
        make_training,
        channels_last: bool = True,
        results: dict | None = None,
    ):
        self.table, self.model, self.family = table, model, family
        self.memory_format, self.inference, self.training = memory_format, inference, training
        self.make_inference, self.make_training = make_inference, make_training
        self.channels_last = channels_last
        self.built: dict = {}
        self.results: dict = {} if results is None else results
        self.errors: list[str] = []

    @property
    def name(self) -> str:
        return f"{self.table}: {self.model}"


def network_rows(compilers, depth: int = 50) -> list[Row]:
    """Every network row, table by table (see the module docstring), for ResNet-``depth``."""
    identity = lambda model, frames: model  # noqa: E731
    cl = lambda model, frames: channels_last(model)  # noqa: E731
    cl_equal = lambda model, frames: folded_and_packed(channels_last(model))  # noqa: E731
    rows = [
        Row("shipped", "TSN-R50", "TSN", "NCHW", "eager, plain convs", "eager",
            identity, identity, channels_last=False),
        Row("shipped", "TSM-R50", "TSM", "NCHW", "eager, plain convs, MMAction2's shift",
            "eager", identity, identity, channels_last=False),
        Row("shipped", "STH-R50 r=1/4", "STH", "channels-last inside, NCHW in and out",
            "eager, STH's packed oneDNN weights and fused adds", "eager",
            identity, identity, channels_last=False),
        Row("equal", "TSN-R50 channels-last", "TSN", "channels-last", "eager, plain convs",
            "eager", cl, cl),
        Row("equal", "TSM-R50, MMAction2's shift", "TSM", "channels-last (NCHW after each shift)",
            "BN folded, convs prepacked", "eager",
            lambda model, frames: folded_and_packed(channels_last(model, False)),
            lambda model, frames: channels_last(model, False)),
        Row("equal", "TSN-R50", "TSN", "channels-last", "BN folded, convs prepacked", "eager",
            cl_equal, cl),
        Row("equal", "TSM-R50", "TSM", "channels-last (layout-preserving shift)",
            "BN folded, convs prepacked", "eager", cl_equal, cl),
        Row("equal", "STH-R50 r=1/4", "STH", "channels-last",
            "BN folded, convs prepacked (STH's own packed weights and fused adds)", "eager",
            cl_equal, cl),
    ]  # fmt: skip
    if "jit" in compilers:
        for model, family, path in [
            ("TSN-R50", "TSN", "fast"),
            ("TSM-R50", "TSM", "fast"),
            ("STH-R50 r=1/4", "STH", "fast"),
            ("STH-R50 r=1/4, trace_path='counted'", "STH", "counted"),
        ]:
            rows.append(
                Row(
                    "jit",
                    model,
                    family,
                    "channels-last",
                    "BN folded, torch.jit.trace + freeze",
                    "torch.jit.trace, train mode",
                    lambda m, f, p=path: jit_traced(channels_last(m), f, p),
                    lambda m, f, p=path: jit_traced(channels_last(m), f, p, freeze=False),
                )  # fmt: skip
            )
    if "inductor" in compilers:
        for model, family in [("TSN-R50", "TSN"), ("TSM-R50", "TSM"), ("STH-R50 r=1/4", "STH")]:
            rows.append(
                Row(
                    "inductor",
                    model,
                    family,
                    "channels-last",
                    "torch.compile (inductor, freezing)",
                    "torch.compile (inductor)",
                    lambda m, f: inductor_compiled(channels_last(m), f),
                    lambda m, f: inductor_compiled(channels_last(m), f, freeze=False),
                )  # fmt: skip
            )
    for row in rows:
        row.model = row.model.replace("-R50", f"-R{depth}")
    return rows


def prepared(row: Row, kind: str, key, make, shipped, frames):
    """``row``'s module for ``kind`` at ``key`` (built once; a build error is recorded in
    the row, named by its class, and gives None)."""
    if (kind, key) not in row.built:
        start = time.perf_counter()
        try:
            row.built[kind, key] = make(shipped, frames)
        except Exception as error:  # a compiler that cannot run here: a row, not a crash
            row.built[kind, key] = None
            row.errors.append(f"{kind} {key}: {type(error).__name__}")
            print(f"    {row.name}: {kind} {key} failed: {type(error).__name__}", flush=True)
        else:
            seconds = time.perf_counter() - start
            print(f"    {row.name}: {kind} {key} built in {seconds:.1f} s", flush=True)
    return row.built[kind, key]


# --- timing -------------------------------------------------------------------------------


def median_ms(label: str, calls: dict, repeats: int, cpu: dict | None = None) -> dict:
    """Median wall milliseconds of each zero-argument call, repeats interleaved across
    calls (:func:`plugins.benchmarking.time_calls`). The warm-up call of each is timed and
    printed with an estimate of the group's time; with ``cpu`` (a dict), the median CPU
    milliseconds of the calling thread are written into it (meaningful at one thread)."""
    warm = {}
    for name, call in calls.items():
        start = time.perf_counter()
        call()
        warm[name] = time.perf_counter() - start
        print(f"    {label}: {name}: warm-up {warm[name]:.2f} s", flush=True)
    print(
        f"  {label}: {len(calls)} rows x {repeats} interleaved repeats, "
        f"about {repeats * sum(warm.values()):.0f} s",
        flush=True,
    )
    timings = time_calls(calls, repeats, warmup=False)
    if cpu is not None:
        cpu.update({name: 1e3 * t.cpu_median for name, t in timings.items()})
    return {name: 1e3 * t.median for name, t in timings.items()}


def stage_shapes(size: int) -> list[tuple[int, int]]:
    """The 3x3 conv stages' channels and frame size at input ``size``."""
    return [(channels, max(1, round(side * size / 224))) for channels, side in STAGES]


def layer_rows(threads: int, batches, size: int, repeats: int) -> list[dict]:
    """STHConv against the dense 3x3 conv at each ResNet-50 stage shape."""
    import mmaction_ext  # noqa: F401
    from mmaction_ext.models import PackedConv2d, STHConv

    import torch

    rows = []
    for batch in batches:
        for channels, side in stage_shapes(size):
            torch.manual_seed(0)
            dense = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            packed = PackedConv2d.from_conv(dense)
            sth = STHConv(channels, channels, num_segments=NUM_SEGMENTS)
            arrangements = {
                name: STHConv(channels, channels, num_segments=NUM_SEGMENTS, arrangement=name)
                for name in ("grouped", "masked")
            }
            x = torch.randn(batch * NUM_SEGMENTS, channels, side, side)
            x_cl = x.contiguous(memory_format=torch.channels_last)
            cpu = {} if threads == 1 else None
            shape = f"{channels}ch {side}x{side}"
            with torch.no_grad():
                ms = median_ms(
                    f"layer {shape} b{batch} t{threads}",
                    {
                        "dense NCHW": partial(dense, x),
                        "dense CL": partial(dense, x_cl),
                        "dense CL packed": partial(packed, x_cl),
                        "STH CL": partial(sth, x_cl),
                        **{f"STH {k} CL": partial(m, x_cl) for k, m in arrangements.items()},
                    },
                    repeats,
                    cpu,
                )
            row = {
                "threads": threads,
                "batch": batch,
                "shape": shape,
                "STH arrangement": sth.arrangement,
                **{f"{k} ms": v for k, v in ms.items()},
                **{f"STH CL / {k}": ms["STH CL"] / ms[k] for k in DENSE_LAYERS},
            }
            if cpu:
                row.update({f"{k} cpu ms": v for k, v in cpu.items()})
                row.update({f"cpu: STH CL / {k}": cpu["STH CL"] / cpu[k] for k in DENSE_LAYERS})
            rows.append(row)
    return rows


DENSE_LAYERS = ("dense NCHW", "dense CL", "dense CL packed")


def boundary_rows(threads: int, batches, size: int, depth: int, repeats: int) -> list[dict]:
    """What ResNetSTH's channels-last inside / NCHW outside costs: the input and output
    layout copies, against the backbone's forward."""
    import torch

    backbone = build("STH", depth).backbone
    rows = []
    for batch in batches:
        frames = torch.randn(batch * NUM_SEGMENTS, 3, size, size)
        with torch.no_grad():
            feature = backbone(frames).contiguous(memory_format=torch.channels_last)
            ms = median_ms(
                f"boundary b{batch} t{threads}",
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


def peak_memory_child(family: str, depth: int, batch: int, size: int) -> None:
    """Print the peak RSS increase of one batch forward of a shipped model, sampled every
    2 ms."""
    import psutil
    import torch

    set_threads(2)
    model = build(family, depth)
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


# --- tables -------------------------------------------------------------------------------


def throughput_keys(threads, batches) -> list[str]:
    return [f"clips/s b{b} t{t}" for t in threads for b in batches]


def ratio_rows(rows: list[Row], threads, batches, depth: int) -> list[dict]:
    """Per table, STH's throughput over TSM's and TSN's (training: the inverse ratio of
    step times); above 1 STH is faster. References: the table's rows named exactly
    ``TSM-R<depth>`` and ``TSN-R<depth>``, and its first STH row."""
    out = []
    for table in dict.fromkeys(row.table for row in rows):
        named = {row.model: row for row in rows if row.table == table}
        sth = next(row for row in named.values() if row.family == "STH")
        for family in ("TSM", "TSN"):
            base = named.get(f"{family}-R{depth}")
            if base is None:
                continue
            ratio = {"table": table, "model": f"STH / {family}"}
            for key in throughput_keys(threads, batches):
                if key in sth.results and key in base.results:
                    ratio[key] = sth.results[key] / base.results[key]
            for t in threads:
                key = f"train step ms t{t}"
                if key in sth.results and key in base.results:
                    ratio[key] = base.results[key] / sth.results[key]
            out.append(ratio)
    return out


def failed(row: dict) -> str:
    """A network row's inference path, with the errors of its builds if any."""
    path = row["inference path"]
    return f"{path}; failed: {row['errors']}" if "errors" in row else path


def docs_tables(result: dict, command: str) -> dict:
    """The tables in the format of ``docs/benchmarks/results/<paper>.json``: one per network
    table (ratio rows follow its rows), the parameters and FLOPs (mmengine's count, 1
    multiply-add = 1 FLOP, one clip), and the layer table."""
    settings = result["settings"]
    threads, batches = settings["threads"], settings["batches"]
    measured = {
        "date": f"{settings['started']} to {settings['finished']}, torch {settings['torch']}",
        "threads": " and ".join(map(str, threads)) + ", in one run",
    }
    keys = throughput_keys(threads, batches) + [f"train step ms t{t}" for t in threads]
    columns = ["model", "memory format", "inference path"]
    columns += [{"name": key, "format": "{:.2f}"} for key in keys]
    columns += [{"name": "max rel diff", "format": "{:.1e}"}]
    tables = {}
    for table in dict.fromkeys(row["table"] for row in result["networks"]):
        rows = [
            # a compiler that failed here: its error class stands in the path cell
            [row["model"], row["memory format"], failed(row)]
            + [row.get(key) for key in keys]
            + [row.get("max rel diff")]
            for row in result["networks"]
            if row["table"] == table
        ]
        rows += [
            [ratio["model"], "", "ratio"] + [ratio.get(key) for key in keys] + [None]
            for ratio in result["ratios"]
            if ratio["table"] == table
        ]
        tables[f"network-{table}"] = dict(
            measured=measured, command=command, columns=columns, rows=rows
        )
    depth = settings["depth"]
    tables["complexity"] = dict(
        measured=measured,
        command=command,
        columns=[
            "model",
            {"name": "params (M)", "format": "{:.2f}"},
            {"name": "GFLOPs", "format": "{:.2f}"},
        ],
        rows=[
            [f"{family}-R{depth}", counts["params_M"], counts["GFLOPs"]]
            for family, counts in result["complexity"].items()
        ],
    )
    layer_keys = [f"{k} ms" for k in (*DENSE_LAYERS, "STH CL")]
    layer_keys += [f"STH CL / {k}" for k in DENSE_LAYERS]
    tables["layer"] = dict(
        measured=measured,
        command=command,
        columns=["threads", "clips", "shape", "auto picks"]
        + [{"name": key, "format": "{:.2f}"} for key in layer_keys],
        rows=[
            [row["threads"], row["batch"], row["shape"], row["STH arrangement"]]
            + [row[key] for key in layer_keys]
            for row in result["layers"]
        ],
    )
    return tables


# --- the run ------------------------------------------------------------------------------


def wait_for_quiet(load: float, max_wait: float) -> None:
    """Sleep until the 1-minute load average is below ``load`` (a timing run started beside
    other work builds its models first, then times on a quiet machine); after ``max_wait``
    seconds, stop with an error rather than time on a busy machine."""
    start = time.monotonic()
    while (now := os.getloadavg()[0]) >= load:
        waited = time.monotonic() - start
        if waited > max_wait:
            raise SystemExit(
                f"--wait-for-load {load}: the load average was still {now:.2f} after "
                f"{waited:.0f} s (--max-wait {max_wait:.0f})"
            )
        print(f"  waiting for load < {load}: {now:.2f} ({waited:.0f} s)", flush=True)
        time.sleep(30)
    print(f"  load {now:.2f}: timing starts", flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke-run defaults (options given win): {QUICK}"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--depth", type=int, default=50, choices=[18, 34, 50, 101])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--layer-repeats", type=int, default=9)
    parser.add_argument(
        "--compilers", nargs="*", choices=["jit", "inductor"], default=["jit", "inductor"]
    )
    parser.add_argument("--no-peak-memory", dest="peak_memory", action="store_false")
    parser.add_argument(
        "--wait-for-load",
        type=float,
        metavar="LOAD",
        help="after building every model (compilations included, which need no quiet "
        "machine), wait until the 1-minute load average is below LOAD before timing",
    )
    parser.add_argument("--max-wait", type=float, default=7200, metavar="SECONDS")
    parser.add_argument("--out", type=Path, default=Path("runs/sth_efficiency"))
    parser.add_argument("--_peak", nargs=4, help=argparse.SUPPRESS)
    if parser.parse_args(argv).quick:  # quick settings as defaults: options given win
        parser.set_defaults(**QUICK)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args._peak:
        family, depth, batch, size = args._peak
        peak_memory_child(family, int(depth), int(batch), int(size))
        return 0

    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger
    from tabulate import tabulate

    # the initialisers log every parameter of every build: keep the progress lines readable
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    started = datetime.now(UTC)
    machine = machine_stamp()
    print(
        f"torch {torch.__version__}, threads {args.threads}, batches {args.batches}, "
        f"{NUM_SEGMENTS}x{args.size}x{args.size} clips, ResNet-{args.depth}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()}",
        flush=True,
    )
    shipped = {family: build(family, args.depth) for family in BACKBONES}
    complexity = {}
    for family, model in shipped.items():
        info = get_model_complexity_info(
            model,
            inputs=(torch.randn(NUM_SEGMENTS, 3, args.size, args.size),),
            show_table=False,
            show_arch=False,
        )
        complexity[family] = {
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "GFLOPs": info["flops"] / 1e9,
        }
        print(f"  {family}: {complexity[family]}", flush=True)

    rows = network_rows(args.compilers, args.depth)
    print(f"  {len(rows)} network rows: {[row.name for row in rows]}", flush=True)
    frames = {}
    for batch in args.batches:
        frames[batch] = torch.randn(batch * NUM_SEGMENTS, 3, args.size, args.size)
        frames[batch, "cl"] = frames[batch].contiguous(memory_format=torch.channels_last)

    def frames_for(row, batch):
        return frames[batch, "cl"] if row.channels_last else frames[batch]

    # build every inference module, and check its output against the shipped model's
    for batch in args.batches:
        with torch.no_grad():
            reference = {f: m(frames[batch]) for f, m in shipped.items()}
        for row in rows:
            shipped_model, inputs = shipped[row.family], frames_for(row, batch)
            module = prepared(row, "inference", batch, row.make_inference, shipped_model, inputs)
            if module is not None:
                with torch.no_grad():
                    out = module(inputs)
                diff = (out - reference[row.family]).abs().max() / reference[row.family].abs().max()
                key = "max rel diff"
                row.results[key] = max(row.results.get(key, 0.0), float(diff))
    for row in rows:
        prepared(row, "training", 1, row.make_training, shipped[row.family], frames_for(row, 1))

    loads = {"after building": os.getloadavg()}
    if args.wait_for_load is not None:
        wait_for_quiet(args.wait_for_load, args.max_wait)
    layers, boundary = [], []
    for threads in args.threads:
        set_threads(threads)
        loads[f"before {threads} threads"] = os.getloadavg()
        layers += layer_rows(threads, args.batches, args.size, args.layer_repeats)
        boundary += boundary_rows(threads, args.batches, args.size, args.depth, args.repeats)
        for batch in args.batches:
            calls = {
                row.name: partial(row.built["inference", batch], frames_for(row, batch))
                for row in rows
                if row.built["inference", batch] is not None
            }
            cpu = {} if threads == 1 else None
            with torch.no_grad():
                ms = median_ms(f"networks b{batch} t{threads}", calls, args.repeats, cpu)
            for row in rows:
                if row.name in ms:
                    row.results[f"clips/s b{batch} t{threads}"] = batch / ms[row.name] * 1e3
                    if cpu:
                        row.results[f"cpu clips/s b{batch} t{threads}"] = (
                            batch / cpu[row.name] * 1e3
                        )
        calls = {
            row.name: partial(train_step, row.built["training", 1], frames_for(row, 1))
            for row in rows
            if row.built["training", 1] is not None
        }
        cpu = {} if threads == 1 else None
        ms = median_ms(f"training step b1 t{threads}", calls, args.train_repeats, cpu)
        for row in rows:
            if row.name in ms:
                row.results[f"train step ms t{threads}"] = ms[row.name]
                if cpu:
                    row.results[f"cpu train step ms t{threads}"] = cpu[row.name]
    loads["end"] = os.getloadavg()

    peaks = {}
    if args.peak_memory:
        batch = max(args.batches)
        for family in BACKBONES:
            child = subprocess.run(
                [sys.executable, __file__, "--_peak", family, str(args.depth), str(batch)]
                + [str(args.size)],
                capture_output=True,
                text=True,
                check=True,
            )
            peaks[family] = json.loads(child.stdout.strip().splitlines()[-1])["forward_peak_mb"]
            print(f"  {family}: forward peak +{peaks[family]:.0f} MB RSS (b{batch})", flush=True)

    networks = [
        {
            "table": row.table,
            "model": row.model,
            "memory format": row.memory_format,
            "inference path": row.inference,
            "training path": row.training,
            **row.results,
            **({"errors": "; ".join(row.errors)} if row.errors else {}),
        }
        for row in rows
    ]
    ratios = ratio_rows(rows, args.threads, args.batches, args.depth)
    ratios += ratio_rows_cpu(rows, args.threads, args.batches, args.depth)
    command = "python tools/analysis_tools/sth_efficiency.py " + shlex.join(argv)
    result = {
        "settings": {
            "argv": argv,
            "command": command,
            "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "size": args.size,
            "depth": args.depth,
            "num_segments": NUM_SEGMENTS,
            "repeats": args.repeats,
            "train_repeats": args.train_repeats,
            "layer_repeats": args.layer_repeats,
            "batches": args.batches,
            "threads": args.threads,
            "compilers": args.compilers,
            "load_average": loads,
            "torch": torch.__version__,
            "backbones": BACKBONES,
            "machine": machine,
        },
        "complexity": complexity,
        "peak_memory_mb": peaks,
        "networks": networks,
        "ratios": ratios,
        "layers": layers,
        "boundary": boundary,
    }
    markdown = []
    printed = {"layers": layers, "boundary": boundary}
    for table in dict.fromkeys(row.table for row in rows):
        printed[f"network table '{table}'"] = [r for r in networks if r["table"] == table]
        printed[f"ratios '{table}' (above 1: STH faster)"] = [
            r for r in ratios if r["table"] == table
        ]
    for title, content in printed.items():
        print(f"\n{title}")
        print(tabulate(content, headers="keys", floatfmt=".3f"))
        markdown.append(
            f"## {title}\n\n" + tabulate(content, headers="keys", floatfmt=".3f", tablefmt="github")
        )
    print(f"\nload average: {loads}")
    write_results(
        args.out,
        result,
        "\n\n".join(markdown) + "\n",
        json_name="sth_efficiency.json",
        markdown_name="sth_efficiency.md",
        indent=2,
    )
    (args.out / "docs_tables.json").write_text(
        json.dumps(docs_tables(result, command), indent=2) + "\n"
    )
    print(f"\nwritten: {args.out / 'sth_efficiency.md'}, .json and docs_tables.json")
    return 0


def ratio_rows_cpu(rows: list[Row], threads, batches, depth: int) -> list[dict]:
    """:func:`ratio_rows` from the thread CPU times (one thread only), models named
    ``cpu: STH / ...``."""
    if 1 not in threads:
        return []
    cpu_rows = [
        Row(row.table, row.model, row.family, "", "", "", None, None,
            results={k[4:]: v for k, v in row.results.items() if k.startswith("cpu ")})
        for row in rows
    ]  # fmt: skip
    ratios = ratio_rows(cpu_rows, [1], batches, depth)
    for ratio in ratios:
        ratio["model"] = f"cpu: {ratio['model']}"
    return ratios


if __name__ == "__main__":
    sys.exit(main())
