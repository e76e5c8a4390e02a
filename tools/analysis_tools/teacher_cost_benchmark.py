"""Retrieval cost of the TeachCLIP student and teachers against CLIP4Clip, with precomputed
features, and the training cost of teaching, in one run.

    python tools/analysis_tools/teacher_cost_benchmark.py [--sizes 1000 10000 100000]
        [--vector-sizes 1000000] [--threads 2] [--train-steps 3] [--train-size vit-b32]
        [--out runs/teacher_cost]

Protocol (what TeachCLIP's efficiency argument is about: the cost of a query once the
gallery is encoded):
- Features are random unit vectors of CLIP ViT-B/32's sizes: D = 512, F = 12 frames,
  L = 32 token positions (all real). Scoring cost does not depend on the values.
- Precomputed per video, what each model must store: CLIP4Clip one D-vector; X-CLIP the
  video vector and the F frame features (plus a frame mask); X-Pool the keys and values of
  its attention over the F frames (text-independent, so stored; recomputing them per query
  would cost 2 F D^2 per video more).
- Per query: the query's own features (sentence; X-CLIP also its words) are computed once,
  as a text encoder would. Then: CLIP4Clip = a matrix product and top-10 (torch), or a FAISS
  exact inner-product index; X-CLIP = the four cross-grained similarities against every
  video (``XCLIPInteraction``); X-Pool = the video re-pooled for the query and the cosine
  (``XPoolPooling``). Galleries are scored in blocks of ``--block`` videos.
- The TeachCLIP student stores what CLIP4Clip stores: its bytes per video are read off the
  rows a real student and a real CLIP4Clip (built at ``--dim``) export for a clip; its
  gallery is another set of random unit vectors of that width, searched by the same two
  paths. Its ratios against CLIP4Clip are the measurement that AFA adds nothing at
  retrieval (about 1.0, up to timing noise).
- Latency: one query, median of repeats (at least 3 after a warm-up, more up to
  ``--seconds`` s; a single call slower than that is measured once). Throughput: a batch of
  ``--batch`` queries (vector paths: 256), queries per second. Threads:
  ``--threads`` (torch and FAISS). Ratios are against CLIP4Clip's dot product at the same N,
  measured in the same run.

- Training cost (``--train-steps`` > 0): one optimiser step (forward, backward, update) of
  the student alone and taught online by the X-CLIP-style teacher, the X-Pool-style teacher
  and both, on the same batch (``--train-batch`` clips of ``--frames`` frames); median of
  ``--train-steps`` steps after a warm-up. ``--train-size``: ``embedded`` (the embedded
  configs' small CLIP, 32-pixel frames) or ``vit-b32`` (CLIP ViT-B/32's architecture at
  224 pixels, random weights: the cost does not depend on them).

Prints the tables and writes ``<out>/results.json`` (with the protocol's settings and the
machine it ran on) and ``<out>/table.md``.
"""

import argparse
from pathlib import Path

from retrieval_ext.models.xclip import XCLIPInteraction
from retrieval_ext.models.xpool import XPoolPooling

import faiss
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from omegaconf import OmegaConf

from plugins.benchmarking import (
    machine_stamp,
    median_seconds,
    median_seconds_within,
    set_threads,
    write_results,
)

FLOAT = 4


def _unit(*shape, generator):
    return F.normalize(torch.randn(*shape, generator=generator), dim=-1)


def _top10(scores: torch.Tensor):
    return torch.topk(scores, k=min(10, scores.shape[1]), dim=1)


def bench_gallery(n: int, with_teachers: bool, args, heads, generator) -> list[dict]:
    """Rows of one gallery size: CLIP4Clip's two vector paths, then (``with_teachers``) the
    X-CLIP and X-Pool teachers."""
    xclip, xpool = heads
    dim, frames, words, block = args.dim, args.frames, args.words, args.block
    videos = _unit(n, dim, generator=generator)
    queries = _unit(256, dim, generator=generator)
    rows = []

    def record(method, scores, batch=256):
        """Time ``scores(count)``, the top 10 of ``count`` queries: one query (latency) and
        ``batch`` queries (throughput)."""
        latency = median_seconds_within(lambda: scores(1), args.seconds)
        batch_seconds = median_seconds_within(lambda: scores(batch), args.seconds)
        row = {"N": n, "method": method, "bytes per video": bytes_per_video(method, args)}
        row.update({"latency ms": 1000 * latency, "queries/s": batch / batch_seconds})
        rows.append(row)
        print(
            f"N={n:>9,} {method:<24} {row['latency ms']:>10.2f} ms {row['queries/s']:>10.1f} q/s",
            flush=True,
        )

    def vector_paths(label, gallery):
        """One vector per video, searched by a matrix product and by a FAISS exact index."""
        record(f"{label} (dot product)", lambda count: _top10(queries[:count] @ gallery.t()))
        index = faiss.IndexFlatIP(dim)
        index.add(gallery.numpy())
        record(f"{label} (FAISS exact)", lambda count: index.search(queries[:count].numpy(), 10))

    vector_paths("CLIP4Clip", videos)
    # the student's own gallery, same width; freed on return, before the teachers' galleries
    vector_paths("TeachCLIP student", _unit(n, dim, generator=generator))
    if not with_teachers:
        return rows
    frame_feats = _unit(n, frames, dim, generator=generator)
    mask = torch.ones(n, frames, dtype=torch.long)
    sentences = _unit(args.batch, dim, generator=generator)
    word_feats = _unit(args.batch, words, dim, generator=generator)
    word_mask = torch.ones(args.batch, words, dtype=torch.long)
    starts = range(0, n, block)

    def xclip_scores(count):
        text = (sentences[:count], word_feats[:count], word_mask[:count])
        blocks = [
            xclip(*text, videos[i : i + block], frame_feats[i : i + block], mask[i : i + block])
            for i in starts
        ]
        return _top10(torch.cat(blocks, dim=1))

    record("X-CLIP teacher", xclip_scores, args.batch)
    videos = None  # X-Pool stores keys and values instead
    stored = [xpool.keys_values(frame_feats[i : i + block]) for i in starts]  # per video: K, V
    frame_feats = None

    def xpool_scores(count):
        blocks = [
            xpool.similarity(sentences[:count], None, mask[i : i + block], keys_values=kv)
            for i, kv in zip(starts, stored, strict=True)
        ]
        return _top10(torch.cat(blocks, dim=1))

    record("X-Pool teacher", xpool_scores, args.batch)
    return rows


def _text_cfg(width: int, heads: int, layers: int) -> dict:
    """CLIP's text tower: 77 positions over its 49,408-token BPE vocabulary."""
    return {
        "context_length": 77,
        "vocab_size": 49408,
        "width": width,
        "heads": heads,
        "layers": layers,
    }


def _small_clip(dim: int) -> dict:
    """A one-layer CLIP whose embedding width is ``dim`` (what the stored rows depend on)."""
    return {
        "embed_dim": dim,
        "vision_cfg": {"layers": 1, "width": 64, "patch_size": 16, "image_size": 32},
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 64,
            "heads": 1,
            "layers": 1,
        },
    }


def exported_row_bytes(arch: str, dim: int, frames: int) -> int:
    """Bytes of the gallery row a real ``arch`` model exports for one clip (float32)."""
    cfg = {"arch": arch, "model_type": "seqTransf", "clip_config": _small_clip(dim)}
    cfg.update(max_frames=frames, temporal_layers=1, init_temporal_from_text=False)
    model = registry.get_model_class(arch).from_config(OmegaConf.create(cfg)).eval()
    clip = torch.randn(1, frames, 3, 32, 32)
    row = model.extract_video_features(clip, torch.ones(1, frames, dtype=torch.long))
    return row.shape[1] * FLOAT


def bytes_per_video(method: str, args) -> int:
    """What a gallery stores per video (float32; a mask byte per frame for the teachers)."""
    dim, frames = args.dim, args.frames
    if method.startswith(("CLIP4Clip", "TeachCLIP")):
        arch = "clip4clip_retrieval" if method.startswith("CLIP4Clip") else "teachclip_retrieval"
        if (arch, dim, frames) not in _ROW_BYTES:
            _ROW_BYTES[arch, dim, frames] = exported_row_bytes(arch, dim, frames)
        return _ROW_BYTES[arch, dim, frames]
    return {
        "X-CLIP teacher": (1 + frames) * dim * FLOAT + frames,
        "X-Pool teacher": 2 * frames * dim * FLOAT + frames,
    }[method]


_ROW_BYTES = {}
TRAIN_SIZES = {
    # the embedded configs' CLIP (configs/lavis/*/*_embedded.yaml)
    "embedded": {
        "clip": {
            "embed_dim": 64,
            "vision_cfg": {"layers": 2, "width": 64, "patch_size": 8, "image_size": 32},
            "text_cfg": {
                "context_length": 77,
                "vocab_size": 49408,
                "width": 64,
                "heads": 2,
                "layers": 2,
            },
        },
        "temporal_layers": 2,
        "image_size": 32,
    },
    # CLIP ViT-B/32's architecture (LAVIS's ViT-B-32 table), random weights
    "vit-b32": {
        "clip": {
            "embed_dim": 512,
            "vision_cfg": {"layers": 12, "width": 768, "patch_size": 32, "image_size": 224},
            "text_cfg": {
                "context_length": 77,
                "vocab_size": 49408,
                "width": 512,
                "heads": 8,
                "layers": 12,
            },
        },
        "temporal_layers": 4,
        "image_size": 224,
    },
}
TEACHER_SETS = {
    "student alone": (),
    "+ X-CLIP teacher": ("xclip",),
    "+ X-Pool teacher": ("xpool",),
    "+ both teachers": ("xclip", "xpool"),
}


def bench_training(args) -> list[dict]:
    """Seconds per optimiser step of the student, alone and taught by each teacher set."""
    from retrieval_ext.models.teachclip import TeachCLIPRetrieval

    size = TRAIN_SIZES[args.train_size]
    common = {
        "model_type": "seqTransf",
        "clip_config": size["clip"],
        "max_frames": args.frames,
        "max_txt_len": args.words,
        "temporal_layers": size["temporal_layers"],
        "init_temporal_from_text": False,
    }
    torch.manual_seed(0)
    teachers = {
        "xclip": registry.get_model_class("xclip_retrieval").from_config(
            OmegaConf.create({"arch": "xclip_retrieval", **common})
        ),
        "xpool": registry.get_model_class("xpool_retrieval").from_config(
            OmegaConf.create({"arch": "xpool_retrieval", **common, "model_type": "xpool"})
        ),
    }
    for teacher in teachers.values():
        teacher.requires_grad_(False).eval()
    pixels = size["image_size"]
    samples = {
        "video": torch.randn(args.train_batch, args.frames, 3, pixels, pixels),
        "video_mask": torch.ones(args.train_batch, args.frames, dtype=torch.long),
        "text_input": [f"a red square moves left then stops {i}" for i in range(args.train_batch)],
    }
    rows = []
    with torch.enable_grad():
        for label, names in TEACHER_SETS.items():
            torch.manual_seed(1)
            student = TeachCLIPRetrieval.from_config(
                OmegaConf.create({"arch": "teachclip_retrieval", **common})
            )
            student.teachers.update({n: teachers[n] for n in names})
            student.train()
            optimizer = torch.optim.AdamW(
                [p for p in student.parameters() if p.requires_grad], lr=1e-5
            )

            def step(model=student, opt=optimizer):
                model(samples).loss.backward()
                opt.step()
                opt.zero_grad()

            seconds = median_seconds(step, args.train_steps)  # after a warm-up step
            rows.append({"setting": label, "seconds per step": seconds})
            print(f"training step, {label:<18} {rows[-1]['seconds per step']:.3f} s", flush=True)
    for row in rows:
        row["vs student alone"] = row["seconds per step"] / rows[0]["seconds per step"]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--vector-sizes", type=int, nargs="*", default=[1000000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--words", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4, help="teachers' queries per batch")
    parser.add_argument("--block", type=int, default=4096, help="videos scored per block")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--train-steps", type=int, default=3, help="0: no training table")
    parser.add_argument("--train-size", choices=sorted(TRAIN_SIZES), default="vit-b32")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--out", default="runs/teacher_cost")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    torch.set_grad_enabled(False)
    machine = machine_stamp()
    generator = torch.Generator().manual_seed(0)
    heads = (
        XCLIPInteraction(args.dim, args.words, args.frames).eval(),
        XPoolPooling(args.dim).eval(),
    )
    rows = []
    for n in sorted(set(args.sizes) | set(args.vector_sizes)):
        rows += bench_gallery(n, n in args.sizes, args, heads, generator)

    base = {r["N"]: r for r in rows if r["method"] == "CLIP4Clip (dot product)"}
    lines = [
        "| N | method | bytes per video | latency, 1 query | queries/s | latency vs CLIP4Clip "
        "| throughput vs CLIP4Clip |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        r["latency ratio"] = r["latency ms"] / base[r["N"]]["latency ms"]
        r["throughput ratio"] = r["queries/s"] / base[r["N"]]["queries/s"]
        lines.append(
            f"| {r['N']:,} | {r['method']} | {r['bytes per video']:,} | {r['latency ms']:.3f} ms "
            f"| {r['queries/s']:,.1f} | {r['latency ratio']:,.1f}x "
            f"| {r['throughput ratio']:.2g}x |"
        )
    training = bench_training(args) if args.train_steps > 0 else []
    if training:
        lines += [
            "",
            f"| training step ({args.train_size}, batch {args.train_batch} x {args.frames} "
            "frames) | seconds per step | vs student alone |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['setting']} | {r['seconds per step']:.3f} | {r['vs student alone']:.2f}x |"
            for r in training
        ]
    table = "\n".join(lines)
    print(table)
    results = {"protocol": vars(args), "machine": machine, "rows": rows, "training": training}
    write_results(Path(args.out), results, table + "\n", markdown_name="table.md")


if __name__ == "__main__":
    main()
