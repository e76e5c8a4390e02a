"""BagFormer's speed claim against ALBEF's real retrieval pipeline, side by side in one run.

    python tools/analysis_tools/bagformer_speed.py --out runs/bagformer-speed
        [--gallery 1000 10000 100000] [--k-test 16 128 256]
        [--albef-cfg-path retrieval_ext/configs/models/albef_retrieval_base.yaml]
        [--albef-image-size PX]
        [--bagformer-cfg-path retrieval_ext/configs/models/bagformer_retrieval_base.yaml]
        [--threads 1] [--query-batch 32] [--chunk 4096] [--memory-gb 6] [--seconds 20]
        [--check-queries 2] [--index-gallery 1000 10000 100000] [--index-kind ivfpq]
        [--index-cells 1024] [--index-nprobe 16 64 256] [--index-tokens-per-bag 256]
        [--index-pq-bytes 32] [--index-refine-factor 4] [--index-queries 10] [--store-dir DIR]
        [--captions data/image_text/annotations/test.json]
        [--dictionary data/image_text/entities.txt]

The pipelines (text-to-image, what LAVIS's evaluation runs for a caption):
- **ALBEF** (``albef_retrieval``, LAVIS's ``compute_sim_matrix``): ITC, the query's [CLS]
  feature against every image's [CLS] feature (N dot products) and its top ``k``; then ITM
  re-rank: the top ``k`` images' ViT outputs through LAVIS's own call of the text encoder
  (12 layers, cross-attention in the last 6) and ``itm_head``, the ITM score plus the ITC
  score, top 10. ``k`` = ``--k-test``: 16, 128 and 256 are ALBEF's ``k_test`` settings.
- **BagFormer recall** (``bagformer_retrieval``): the query's bags against every image's
  257 projected tokens by bag-wise MaxSim (``chunked_bagwise_similarity``, the gallery kept
  on the CPU in float16 and scored in float32, as the model's evaluation does), top 10.
- **BagFormer recall + rank**: its top ``k`` re-scored by its 6 fusion layers (ITM) plus the
  recall score, top 10.
- **BagFormer recall through the TokenIndex** (``retrieval_ext.multivector.TokenIndex``,
  ``--index-kind``, by default IVF-PQ whose fetched tokens are re-scored from the stored
  float16 tokens, the stored tokens in a memmap file read for the exact bag-wise re-rank):
  the query's text encoding plus the index's search, at every ``--index-nprobe``. The file
  is searched right after it is written, so its pages are still in the page cache (where
  memory allows): the search reads cached pages, and its latency is not that of reading
  the tokens from disk.

Sizes: each model at its config's full size (ALBEF: ViT-B/16 at 384 px = 577 image tokens;
BagFormer: ViT-B/16 at 256 px = 257 tokens; both BERT-base 6 text + 6 fusion layers, 256-d
projections; ``--albef-image-size`` changes ALBEF's), random weights (speed does not depend
on the values), eval mode, float32, ``torch.no_grad``, ``--threads`` intra-op threads.
Queries: captions of the embedded test split, tokenised at each model's ``max_txt_len``.

Precomputed, not timed: every gallery feature, random with the real shapes: ALBEF's image
[CLS] features (N x 256, float32); for the re-rank stages a pool of ``max(--k-test)`` images'
ViT outputs (ALBEF's float32 as LAVIS keeps them, BagFormer's float16), the top-k ids mapped
into the pool (the gather is timed); BagFormer's gallery tokens (N x 257 x 256, float16).

Timing (:mod:`plugins.benchmarking`): a call is timed for about ``--seconds`` (a call that
alone takes longer is timed once), the median is kept. Latency: one query, text encoding
included. Throughput: ``--query-batch`` queries encoded together, scored together against
the gallery, then re-ranked one query after another (as LAVIS does), in queries per second.

What is measured and what is derived, each cell says which (its ``basis``):
- ``measured``: the path timed end to end as one call.
- ``stages``: the sum of the path's stages, each measured (ALBEF's ITC top k, then its
  re-rank of k images, whose cost does not depend on N). The composition check times ALBEF's
  and BagFormer's two stages end to end at the smallest N and smallest k, interleaved with
  the sum, and reports the error.
- ``scaled``: BagFormer's brute-force recall over a gallery whose float16 tokens (and the
  float32 copy of the chunk being scored) exceed ``--memory-gb``: the MaxSim over one
  ``--chunk`` images, timed, times N / chunk, plus a timed top 10 over N scores. The scaling
  check runs, at every N whose gallery fits (at least two chunks), the full-gallery call and
  the scaled estimate interleaved and reports the error; throughput's re-rank of the batch is
  the re-rank of one query times the batch, checked with ``--check-queries`` queries.
  Derived cells are rounded to what the largest error of the checks they depend on allows
  (:func:`round_to_error`): 790,595 is written 791,000 at 1%, 790,000 at 5%, 800,000
  at 20%.

Per-candidate costs: an ITC dot product (the N dot products over N, at the largest N), a
bag-wise MaxSim (one chunk's MaxSim over the chunk), an ITM pass of each model (its re-rank
of ``max(--k-test)`` images over that k).

Ratios: ALBEF's two stages at each k over BagFormer's recall and over BagFormer's recall +
rank at the same k, for latency; BagFormer's queries per second over ALBEF's, for
throughput; against the paper's 20.72x and 25.74x; each rounded to the sum of its two
cells' check errors. ``slower_than_albef`` lists every (N, k)
where BagFormer's recall over the whole gallery is slower than ALBEF's two stages.

The TokenIndex rows (``--index-gallery``; none to skip; ``albef_k<k>_over_index``: ALBEF's
two stages over the index's latency at the same N): a clustered gallery at the model's
token count and width (``ClusteredGallery``, the index benchmark's hard kind: weakly
clustered tokens, queries shifted), indexed in chunks; latency = the model's text encoding
of one caption (measured above) plus the median search of ``--index-queries`` synthetic
queries with the caption's bag count; recall@10 against exact MaxSim over every chunk; a
setting whose index (codes and ids in memory, tokens in the memmap file), one generated chunk
and one query's exact stage (its candidates' tokens copied to float32 with their dot
products: at most ``min(N, bags x --index-tokens-per-bag)`` candidates, 0.79 GB of tokens at
3,000) would exceed ``--memory-gb``, or whose memmap file would not fit the free disk, is
refused before any work. The bagging layer's cost per caption (uncached and cached) is
reported too. Progress goes to stdout; results.json is rewritten after every step.
Writes results.json (every timing, basis, check error, settings, load averages, peak
resident memory, the machine stamp) and report.md.
"""

import argparse
import inspect
import json
import math
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import retrieval_ext  # noqa: F401  (registers the models, applies LAVIS fixes)
from retrieval_ext.datasets.entity_dictionary import read_caption_corpus
from retrieval_ext.models.bagformer import BagFormerRetrieval
from retrieval_ext.models.bagging import EntityBagger, chunked_bagwise_similarity
from retrieval_ext.multivector import (
    ClusteredGallery,
    TokenIndex,
    exact_search_chunks,
    exact_stage_bytes,
    make_queries,
)

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from omegaconf import OmegaConf
from tabulate import tabulate

from plugins.benchmarking import (
    machine_stamp,
    median_seconds_within,
    set_threads,
    time_calls,
    write_results,
)

REPO = Path(__file__).resolve().parents[2]
PAPER = {"latency": 20.72, "throughput": 25.74}
TOP = 10  # results returned per query
# the most (texts, images, bags, tokens) values chunked_bagwise_similarity scores at once
CHUNK_ELEMENTS = inspect.signature(chunked_bagwise_similarity).parameters["max_elements"].default


# ---------------------------------------------------------------- derived numbers
def relative_error(full: float, estimate: float) -> float:
    """How far an estimate is from the measured full call, relative to the full call."""
    return abs(estimate - full) / full


def round_to_error(value: float, error: float, max_digits: int = 3) -> float:
    """``value`` with its digits below the error's magnitude dropped: the last digit kept is
    the one at the place of ``value * error`` (at least one significant digit, at most
    ``max_digits``)."""
    if value == 0 or not math.isfinite(value):
        return value
    top = math.floor(math.log10(abs(value)))
    place = top - max_digits + 1
    if error > 0:
        place = max(place, math.floor(math.log10(abs(value) * error)))
    place = min(place, top)
    return round(value / 10**place) * 10**place


def check_memory(args, bag_tokens: int, dim: int, query_bags: int) -> None:
    """Refuse, before any work, TokenIndex rows whose in-memory part exceeds
    ``--memory-gb``; the error names the sizes."""
    for n in args.index_gallery:
        candidates = min(n, query_bags * args.index_tokens_per_bag)
        need = TokenIndex.memory_bytes(
            args.index_kind,
            n,
            bag_tokens,
            dim,
            pq_bytes=args.index_pq_bytes,
            refine_factor=args.index_refine_factor,
            refine_from="store",
            in_memory_store=False,
        )
        need += 3 * min(args.chunk, n) * bag_tokens * dim * 4  # one generated chunk
        need += exact_stage_bytes(candidates, bag_tokens, dim, query_bags)
        if need > args.memory_gb * 2**30:
            raise ValueError(
                f"--index-gallery {n}: a {args.index_kind} TokenIndex of {n:,} images x "
                f"{bag_tokens} tokens x {dim} dims needs about {need / 2**20:,.1f} MiB in "
                f"memory (codes, ids, one generated chunk of {min(args.chunk, n):,} images "
                f"and the float32 tokens of up to {candidates:,} candidates), above "
                f"--memory-gb {args.memory_gb}; use a smaller --chunk or "
                "--index-tokens-per-bag, drop that size or raise the bound"
            )


def check_disk(args, bag_tokens: int, dim: int) -> None:
    """Refuse, before any work, a TokenIndex row whose float16 memmap file would not fit
    the free disk of ``--store-dir``."""
    if not args.index_gallery:
        return
    store_dir = args.store_dir or args.out
    store_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(store_dir).free
    need = max(args.index_gallery) * bag_tokens * dim * 2  # one row's file at a time
    if need > free:
        raise ValueError(
            f"--index-gallery {max(args.index_gallery)}: the float16 token file needs "
            f"{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free in {store_dir} (--store-dir)"
        )


def peak_rss_gb() -> float:
    """The process's peak resident memory so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---------------------------------------------------------------- the two pipelines
def build_albef(cfg_path: str, image_size: int | None):
    cfg = OmegaConf.load(cfg_path).model
    if image_size:
        cfg.image_size = image_size
    cfg.pretrained, cfg.load_finetuned = "", False
    return registry.get_model_class("albef_retrieval").from_config(cfg).eval()


def build_bagformer(cfg_path: str, dictionary: str) -> BagFormerRetrieval:
    cfg = OmegaConf.load(cfg_path).model
    cfg.entity_dictionary = dictionary
    cfg.pretrained, cfg.load_finetuned = "", False
    return BagFormerRetrieval.from_config(cfg).eval()


def _shapes(model):
    vit = model.visual_encoder
    return vit.patch_embed.num_patches + 1, vit.vision_width, model.vision_proj.out_features


class Albef:
    """ALBEF's two stages as LAVIS's ``compute_sim_matrix`` runs them for one caption."""

    def __init__(self, model):
        self.model = model
        self.image_tokens, self.vision_width, self.embed_dim = _shapes(model)

    def encode(self, captions):
        """Token ids for the re-rank and normalised [CLS] features for ITC."""
        text = self.model.tokenizer(
            captions,
            padding="max_length",
            truncation=True,
            max_length=self.model.max_txt_len,
            return_tensors="pt",
        )
        cls = self.model.text_encoder.forward_text(text).last_hidden_state[:, 0, :]
        return text, F.normalize(self.model.text_proj(cls), dim=-1)

    def itc(self, captions, image_cls, k: int):
        text, feats = self.encode(captions)
        return text, (feats @ image_cls.t()).topk(min(k, len(image_cls)), dim=1)

    def rerank(self, text, q: int, values, ids, pool):
        """ITM of query ``q`` on its top ``ids`` (their ViT outputs from ``pool``)."""
        k = len(ids)
        images = pool[ids % len(pool)]
        fused = self.model.text_encoder(
            text.input_ids[q : q + 1].repeat(k, 1),
            attention_mask=text.attention_mask[q : q + 1].repeat(k, 1),
            encoder_hidden_states=images,
            encoder_attention_mask=torch.ones(images.shape[:-1], dtype=torch.long),
            return_dict=True,
        ).last_hidden_state
        scores = self.model.itm_head(fused[:, 0, :])[:, 1] + values
        return ids[scores.topk(min(TOP, k)).indices]


class BagFormer:
    """BagFormer's recall (bag-wise MaxSim) and rank (fusion ITM) for a caption."""

    def __init__(self, model):
        self.model = model
        self.image_tokens, self.vision_width, self.embed_dim = _shapes(model)

    def encode(self, captions):
        """Fusion inputs and normalised bag features (one query: its own bags only)."""
        sequence, mask, bags, bag_mask = self.model.encode_text(self.model.tokenize(captions))
        bags = F.normalize(self.model.text_proj(bags), dim=-1)
        if len(captions) == 1:
            bags, bag_mask = bags[:, bag_mask[0]], bag_mask[:, bag_mask[0]]
        return sequence, mask, bags, bag_mask

    @staticmethod
    def score(bags, bag_mask, tokens):
        return chunked_bagwise_similarity(bags, bag_mask, tokens, directions="t2i")[0]

    def recall(self, captions, tokens, k: int):
        sequence, mask, bags, bag_mask = self.encode(captions)
        scores = self.score(bags, bag_mask, tokens)
        return (sequence, mask), scores.topk(min(k, len(tokens)), dim=1)

    def rerank(self, text, q: int, values, ids, pool):
        sequence, mask = text
        k = len(ids)
        images = pool[ids % len(pool)].to(sequence.dtype)  # float16 gallery, float32 compute
        logits = self.model.fusion_itm_logits(
            sequence[q : q + 1].expand(k, -1, -1), mask[q : q + 1].expand(k, -1), images
        )
        return ids[(logits[:, 1] + values).topk(min(TOP, k)).indices]


def two_stage(pipe, first_stage, captions, gallery, k: int, pool):
    """A pipeline end to end: the first stage's top ``k``, each query re-ranked."""
    text, top = first_stage(captions, gallery, k)
    return [pipe.rerank(text, q, top.values[q], top.indices[q], pool) for q in range(len(captions))]


# ---------------------------------------------------------------- measurement
class Run:
    """Everything one run measures, written to results.json after every step."""

    def __init__(self, args, albef: Albef, bagformer: BagFormer, captions):
        self.args, self.albef, self.bf = args, albef, bagformer
        self.one = captions[:1]
        self.batch = (captions * (args.query_batch // len(captions) + 1))[: args.query_batch]
        self.gen = torch.Generator().manual_seed(0)
        self.result: dict = {"stages": {}, "checks": {}, "per_candidate": {}}

    def time(self, name: str, call) -> float:
        seconds = median_seconds_within(call, self.args.seconds)
        self.result["stages"][name] = 1000 * seconds
        print(f"  {name}: {1000 * seconds:,.1f} ms", flush=True)
        return seconds

    def check(self, name: str, full, parts) -> float:
        """Time ``full`` and the ``(factor, call)`` pairs of ``parts`` interleaved; the error
        of the sum of factor x median of each part as an estimate of ``full``'s median."""
        calls = {"full": full} | {f"stage{i}": call for i, (_, call) in enumerate(parts)}
        timing = time_calls(calls, repeats=self.args.check_repeats)
        measured = timing["full"].median
        estimate = sum(f * timing[f"stage{i}"].median for i, (f, _) in enumerate(parts))
        error = relative_error(measured, estimate)
        self.result["checks"][name] = {
            "full_ms": 1000 * measured,
            "estimate_ms": 1000 * estimate,
            "error": error,
        }
        print(
            f"  check {name}: full {1000 * measured:,.1f} ms, estimate {1000 * estimate:,.1f} "
            f"ms, error {100 * error:.1f}%",
            flush=True,
        )
        return error

    def random_tokens(self, n: int, tokens: int, dim: int, dtype=torch.float32):
        out = torch.empty(n, tokens, dim, dtype=dtype)
        for start in range(0, n, 1024):  # normalised in slices: no float32 copy of it all
            part = torch.randn(min(1024, n - start), tokens, dim, generator=self.gen)
            out[start : start + len(part)] = F.normalize(part, dim=-1).to(dtype)
        return out

    def fits(self, n: int, bags: int) -> bool:
        """Whether BagFormer's float16 gallery of ``n`` images and the float32 copy of the
        chunk that ``chunked_bagwise_similarity`` converts fit ``--memory-gb``."""
        row = self.bf.image_tokens * self.bf.embed_dim
        step = min(n, CHUNK_ELEMENTS // (bags * self.bf.image_tokens))
        return n * row * 2 + step * row * 4 <= self.args.memory_gb * 2**30

    def save(self):
        self.result["peak_rss_gb"] = peak_rss_gb()
        self.result["load_average_now"] = os.getloadavg()
        self.result["date"] = time.strftime("%Y-%m-%d", time.gmtime())
        write_results(self.args.out, self.result)

    @torch.no_grad()
    def measure(self) -> dict:
        a, b, args = self.albef, self.bf, self.args
        ks = sorted(set(args.k_test))
        k_min, k_max, chunk = ks[0], ks[-1], args.chunk
        stages = {}

        print("text encoding", flush=True)
        for name, pipe in (("albef", a), ("bagformer", b)):
            stages[f"{name}_encode_1"] = self.time(
                f"{name}_encode_1", lambda p=pipe: p.encode(self.one)
            )
            stages[f"{name}_encode_batch"] = self.time(
                f"{name}_encode_batch", lambda p=pipe: p.encode(self.batch)
            )
        bags_1 = b.encode(self.one)[2:]
        bags_q = b.encode(self.batch)[2:]
        self.result["query_bags"] = int(bags_1[0].shape[1])

        print("re-rank stages (the same for every N)", flush=True)
        pools = {
            "albef": torch.randn(k_max, a.image_tokens, a.vision_width, generator=self.gen),
            "bagformer": torch.randn(
                k_max, b.image_tokens, b.vision_width, generator=self.gen
            ).half(),
        }
        texts = {"albef": a.encode(self.batch)[0], "bagformer": b.encode(self.batch)[:2]}
        ids, values = torch.arange(k_max), torch.zeros(k_max)
        for name, pipe in (("albef", a), ("bagformer", b)):
            for k in ks:
                stages[f"{name}_rerank_k{k}"] = self.time(
                    f"{name}_rerank_k{k}",
                    lambda p=pipe, n=name, k=k: p.rerank(
                        texts[n], 0, values[:k], ids[:k], pools[n]
                    ),
                )
            self.result["per_candidate"][f"{name}_itm_ms"] = (
                1000 * stages[f"{name}_rerank_k{k_max}"] / k_max
            )
            # the batch's re-rank is one query's, once per query: checked on a few
            count = min(args.check_queries, len(self.batch))

            def each(p=pipe, n=name, count=count):
                for q in range(count):
                    p.rerank(texts[n], q, values[:k_min], ids[:k_min], pools[n])

            self.check(
                f"{name}_rerank_queries",
                each,
                [
                    (
                        count,
                        lambda p=pipe, n=name: p.rerank(
                            texts[n], 0, values[:k_min], ids[:k_min], pools[n]
                        ),
                    )
                ],
            )
            self.save()

        print(f"bag-wise MaxSim over one chunk of {chunk:,} images", flush=True)
        chunk_tokens = self.random_tokens(chunk, b.image_tokens, b.embed_dim, torch.float16)
        stages["maxsim_chunk_1"] = self.time(
            "maxsim_chunk_1", lambda: b.score(*bags_1, chunk_tokens)
        )
        stages["maxsim_chunk_batch"] = self.time(
            "maxsim_chunk_batch", lambda: b.score(*bags_q, chunk_tokens)
        )
        self.result["per_candidate"]["maxsim_us"] = 1e6 * stages["maxsim_chunk_1"] / chunk

        checked = [n for n in args.gallery if n >= 2 * chunk and self.fits(n, bags_q[0].shape[1])]
        if not checked:  # the scaling is checked at least once, on a gallery made for it
            checked = [2 * chunk]
        rows = []
        for n in sorted(set(args.gallery) | set(checked)):
            rows += self.measure_gallery(
                n,
                stages,
                ks,
                chunk_tokens,
                bags_1,
                bags_q,
                pools,
                texts,
                check=n in checked,
                report=n in args.gallery,
            )
            self.save()
        self.result["rows"] = self.finish(rows, ks)
        self.save()
        return self.result

    def measure_gallery(
        self,
        n,
        stages,
        ks,
        chunk_tokens,
        bags_1,
        bags_q,
        pools,
        texts,
        *,
        check: bool,
        report: bool,
    ):
        """Rows of one gallery size (raw seconds and the checks each depends on)."""
        a, b, args = self.albef, self.bf, self.args
        batch = len(self.batch)
        chunk = len(chunk_tokens)
        print(f"N = {n:,}", flush=True)
        image_cls = F.normalize(torch.randn(n, a.embed_dim, generator=self.gen), dim=-1)
        query = F.normalize(torch.randn(a.embed_dim, generator=self.gen), dim=0)
        dot = median_seconds_within(lambda: image_cls @ query, args.seconds / 4)
        if report:  # rows come in ascending N: the largest reported N is kept
            self.result["per_candidate"]["itc_dot_us"] = 1e6 * dot / n
        resident = self.fits(n, bags_q[0].shape[1])
        tokens = (
            self.random_tokens(n, b.image_tokens, b.embed_dim, torch.float16) if resident else None
        )
        if check and resident:
            for label, captions, bags in (
                ("latency", self.one, bags_1),
                ("batch", self.batch, bags_q),
            ):
                scores = torch.randn(len(captions), n, generator=self.gen)
                self.check(
                    f"maxsim_scaling_{label}_N{n}",
                    lambda c=captions: b.recall(c, tokens, TOP),
                    [
                        (1, lambda c=captions: b.encode(c)),
                        (n / chunk, lambda g=bags: b.score(*g, chunk_tokens)),
                        (1, lambda s=scores: s.topk(min(TOP, n), dim=1)),
                    ],
                )
        if n == min(args.gallery) and report:  # the two stages end to end against their sum
            k = ks[0]
            self.check(
                "albef_stages",
                lambda: two_stage(a, a.itc, self.one, image_cls, k, pools["albef"]),
                [
                    (1, lambda: a.itc(self.one, image_cls, k)),
                    (
                        1,
                        lambda: a.rerank(
                            texts["albef"], 0, torch.zeros(k), torch.arange(k), pools["albef"]
                        ),
                    ),
                ],
            )
            if resident:
                self.check(
                    "bagformer_stages",
                    lambda: two_stage(b, b.recall, self.one, tokens, k, pools["bagformer"]),
                    [
                        (1, lambda: b.recall(self.one, tokens, k)),
                        (
                            1,
                            lambda: b.rerank(
                                texts["bagformer"],
                                0,
                                torch.zeros(k),
                                torch.arange(k),
                                pools["bagformer"],
                            ),
                        ),
                    ],
                )
        if not report:
            return []
        rows = []

        def row(path, k, latency, latency_basis, qps_seconds, qps_basis, depends):
            rows.append(
                {
                    "N": n,
                    "path": path,
                    "k": k,
                    "latency_s": latency,
                    "latency_basis": latency_basis,
                    "batch_s": qps_seconds,
                    "batch_basis": qps_basis,
                    "depends_on": depends,
                }
            )

        # ALBEF: ITC alone, then ITC's top k re-ranked
        itc_1 = median_seconds_within(lambda: a.itc(self.one, image_cls, TOP), args.seconds)
        itc_q = median_seconds_within(lambda: a.itc(self.batch, image_cls, TOP), args.seconds)
        row("ALBEF ITC", None, itc_1, "measured", itc_q, "measured", [])
        for k in ks:
            s1 = median_seconds_within(lambda k=k: a.itc(self.one, image_cls, k), args.seconds)
            sq = median_seconds_within(lambda k=k: a.itc(self.batch, image_cls, k), args.seconds)
            rerank = stages[f"albef_rerank_k{k}"]
            row(
                "ALBEF ITC + ITM re-rank",
                k,
                s1 + rerank,
                "stages",
                sq + batch * rerank,
                "stages",
                ["albef_stages", "albef_rerank_queries"],
            )

        # BagFormer: recall over every image (resident, or scaled from the chunk)
        def recall_seconds(k):
            if resident:
                return (
                    median_seconds_within(lambda: b.recall(self.one, tokens, k), args.seconds),
                    median_seconds_within(lambda: b.recall(self.batch, tokens, k), args.seconds),
                    "measured",
                )
            one_row, batch_rows = torch.randn(1, n), torch.randn(batch, n)
            top_1 = median_seconds_within(lambda: one_row.topk(min(k, n), dim=1), args.seconds / 4)
            top_q = median_seconds_within(
                lambda: batch_rows.topk(min(k, n), dim=1), args.seconds / 4
            )
            scale = n / chunk
            return (
                stages["bagformer_encode_1"] + scale * stages["maxsim_chunk_1"] + top_1,
                stages["bagformer_encode_batch"] + scale * stages["maxsim_chunk_batch"] + top_q,
                "scaled",
            )

        lat, bat, basis = recall_seconds(TOP)
        scaling = ["maxsim_scaling_latency", "maxsim_scaling_batch"] if basis == "scaled" else []
        row("BagFormer recall", None, lat, basis, bat, basis, scaling)
        for k in ks:
            lat, bat, basis = recall_seconds(k)
            rerank = stages[f"bagformer_rerank_k{k}"]
            row(
                "BagFormer recall + rank",
                k,
                lat + rerank,
                "stages" if basis == "measured" else basis,
                bat + batch * rerank,
                "stages" if basis == "measured" else basis,
                scaling + ["bagformer_stages", "bagformer_rerank_queries"],
            )
        return rows

    def error_of(self, depends: list[str]) -> float | None:
        """The largest error of the checks a derived cell depends on (a name stands for
        every check it prefixes); None for a measured cell."""
        errors = [
            check["error"]
            for name, check in self.result["checks"].items()
            if any(name.startswith(d) for d in depends)
        ]
        return max(errors) if errors else None

    def finish(self, raw: list[dict], ks) -> list[dict]:
        """Milliseconds and queries per second, derived cells rounded to their error, and
        the ratios of ALBEF's two stages to BagFormer's at every N and k."""
        batch = len(self.batch)
        rows = []
        for r in raw:
            error = self.error_of(r["depends_on"])
            latency_ms, qps = 1000 * r["latency_s"], batch / r["batch_s"]
            out = {"N": r["N"], "path": r["path"], "k": r["k"]}
            out["latency_basis"], out["throughput_basis"] = r["latency_basis"], r["batch_basis"]
            out["check_error"] = error
            derived_latency = r["latency_basis"] != "measured"
            derived_qps = r["batch_basis"] != "measured"
            out["latency_ms"] = (
                round_to_error(latency_ms, error or 0) if derived_latency else latency_ms
            )
            out["qps"] = round_to_error(qps, error or 0) if derived_qps else qps
            out["latency_ms_unrounded"], out["qps_unrounded"] = latency_ms, qps
            rows.append(out)
        ratios, slower = [], []
        for n in sorted({r["N"] for r in rows}):
            at = {(r["path"], r["k"]): r for r in rows if r["N"] == n}
            recall = at[("BagFormer recall", None)]
            for k in ks:
                albef = at[("ALBEF ITC + ITM re-rank", k)]
                ranked = at[("BagFormer recall + rank", k)]
                entry = {"N": n, "k": k}
                for label, bf in (("recall", recall), ("recall + rank", ranked)):
                    error = (albef["check_error"] or 0) + (bf["check_error"] or 0)
                    latency = albef["latency_ms_unrounded"] / bf["latency_ms_unrounded"]
                    throughput = bf["qps_unrounded"] / albef["qps_unrounded"]
                    entry[f"latency_ratio_{label}"] = round_to_error(latency, error)
                    entry[f"throughput_ratio_{label}"] = round_to_error(throughput, error)
                    entry[f"ratio_error_{label}"] = error
                ratios.append(entry)
                if recall["latency_ms_unrounded"] > albef["latency_ms_unrounded"]:
                    slower.append(
                        f"N = {n:,}, k = {k}: BagFormer recall over the whole gallery "
                        f"({recall['latency_ms']:,} ms) is slower than ALBEF's ITC + ITM "
                        f"re-rank ({albef['latency_ms']:,} ms)"
                    )
        self.result["ratios"] = ratios
        self.result["slower_than_albef"] = slower
        return rows

    @torch.no_grad()
    def measure_index(self) -> list[dict]:
        """BagFormer's recall through the TokenIndex at each ``--index-gallery`` size."""
        b, args = self.bf, self.args
        if not args.index_gallery:
            return []
        import faiss  # noqa: F401  (loaded before set_threads, which pins its threads too)

        set_threads(args.threads)
        encode = self.result["stages"]["bagformer_encode_1"] / 1000
        bags = self.result["query_bags"]
        store_dir = args.store_dir or args.out
        store_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for n in args.index_gallery:
            gallery = ClusteredGallery(
                n, b.image_tokens, b.embed_dim, 1024, min(args.chunk, n), args.seed, noise=2.0
            )
            store = store_dir / f"bagformer-speed-tokens-{n}.npy"
            index = TokenIndex(
                b.embed_dim,
                b.image_tokens,
                args.index_kind,
                args.index_cells,
                pq_bytes=args.index_pq_bytes,
                refine_factor=args.index_refine_factor,
                refine_from="store",
                store_path=store,
                capacity=n,
            )
            start, first = time.perf_counter(), None
            for offset, part in gallery.chunks():
                if first is None:
                    first = part
                    sample = part.reshape(-1, b.embed_dim)
                    picks = torch.randperm(len(sample), generator=self.gen)
                    index.train(sample[picks[: 64 * (args.index_cells or 4096)]])
                index.add(part)
                print(
                    f"  index: {offset + len(part):,} of {n:,} images "
                    f"({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
            build = time.perf_counter() - start
            queries = make_queries(first, args.index_queries, args.seed, shift=0.5, bags=bags)
            del first
            exact, _ = exact_search_chunks(gallery.chunks(), [q for _, q in queries], TOP)
            for nprobe in args.index_nprobe:
                search = {"tokens_per_bag": args.index_tokens_per_bag, "nprobe": nprobe}
                index.search(queries[0][1], TOP, **search)  # warm-up
                times, recalls, candidates = [], [], []
                for (_, query), reference in zip(queries, exact, strict=True):
                    begin = time.perf_counter()
                    _, found, count = index.search(query, TOP, **search)
                    times.append(time.perf_counter() - begin)
                    recalls.append(len(set(found.tolist()) & set(reference.tolist())) / TOP)
                    candidates.append(count)
                search_s = statistics.median(times)
                rows.append(
                    {
                        "N": n,
                        "index": args.index_kind,
                        "cells": index.cells,
                        "nprobe": nprobe,
                        "tokens_per_bag": args.index_tokens_per_bag,
                        "pq_bytes": args.index_pq_bytes,
                        "refine_factor": args.index_refine_factor,
                        "build_s": build,
                        "search_ms": 1000 * search_s,
                        "latency_ms": 1000 * (encode + search_s),
                        "latency_basis": "stages",
                        "recall@10_vs_exact": statistics.fmean(recalls),
                        "mean_candidates": statistics.fmean(candidates),
                        "peak_rss_gb": peak_rss_gb(),
                    }
                )
                for albef in self.result.get("rows", []):  # ALBEF's two stages at this N
                    if albef["N"] == n and albef["path"] == "ALBEF ITC + ITM re-rank":
                        ratio = albef["latency_ms_unrounded"] / rows[-1]["latency_ms"]
                        rows[-1][f"albef_k{albef['k']}_over_index"] = round_to_error(
                            ratio, albef["check_error"] or 0
                        )
                print(f"  {rows[-1]}", flush=True)
            del index
            store.unlink()
            self.result["index_rows"] = rows
            self.save()
        return rows


def bagging_cost(model, captions, repeats: int = 5) -> dict:
    """Microseconds per caption of the bagging layer, uncached and cached."""
    text = model.tokenize(captions)
    ids, mask = text.input_ids.cpu(), text.attention_mask.cpu()
    phrases = [
        line.strip()
        for line in Path(model.bagger.report.path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    fresh_times, cached_times = [], []
    for _ in range(repeats):
        bagger = EntityBagger(
            [tuple(model.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in phrases]
        )
        start = time.perf_counter()
        bagger.bag_index(ids, mask)
        fresh_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bagger.bag_index(ids, mask)
        cached_times.append(time.perf_counter() - start)
    per = 1e6 / len(captions)
    return {
        "captions": len(captions),
        "uncached_us_per_caption": statistics.median(fresh_times) * per,
        "cached_us_per_caption": statistics.median(cached_times) * per,
    }


def _number(value: float) -> str:
    """Whole units from 100 up, three significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _basis(row: dict, key: str) -> str:
    """How a cell was obtained, with the error of its checks when it is derived."""
    note = row[f"{key}_basis"]
    if note == "measured" or row["check_error"] is None:
        return note
    return f"{note}, ±{100 * row['check_error']:.0f}%"


def report(result: dict) -> str:
    main = [
        {
            "N": f"{r['N']:,}",
            "path": r["path"] + (f" (k = {r['k']})" if r["k"] else ""),
            "latency (ms)": f"{_number(r['latency_ms'])} ({_basis(r, 'latency')})",
            "throughput (q/s)": f"{_number(r['qps'])} ({_basis(r, 'throughput')})",
        }
        for r in result["rows"]
    ]
    ratios = [
        {
            "N": f"{r['N']:,}",
            "k": r["k"],
            "latency: ALBEF / recall": f"{r['latency_ratio_recall']:.3g}x",
            "latency: ALBEF / recall + rank": f"{r['latency_ratio_recall + rank']:.3g}x",
            "throughput: recall / ALBEF": f"{r['throughput_ratio_recall']:.3g}x",
            "throughput: recall + rank / ALBEF": f"{r['throughput_ratio_recall + rank']:.3g}x",
        }
        for r in result["ratios"]
    ]
    lines = [
        "# BagFormer speed against ALBEF's two stages\n",
        f"Threads {result['torch_threads']}; query batch {result['settings']['query_batch']}; "
        f"ALBEF image tokens {result['albef_image_tokens']}, BagFormer's "
        f"{result['bagformer_image_tokens']}; load average before {result['load_average_before']}"
        f"; peak RSS {result['peak_rss_gb']:.1f} GiB; paper: {PAPER['latency']}x latency, "
        f"{PAPER['throughput']}x throughput\n",
        tabulate(main, headers="keys", tablefmt="github"),
        "",
        tabulate(ratios, headers="keys", tablefmt="github"),
        "",
        "Per candidate: " + ", ".join(f"{k} {v:.4g}" for k, v in result["per_candidate"].items()),
        "",
        "Checks: " + "; ".join(f"{k} {100 * v['error']:.1f}%" for k, v in result["checks"].items()),
        "",
        *(
            f"- {line}"
            for line in result["slower_than_albef"] or ["BagFormer recall is never slower"]
        ),
        "",
    ]
    if result.get("index_rows"):
        lines += [tabulate(result["index_rows"], headers="keys", tablefmt="github"), ""]
    bagging = result["bagging"]
    lines.append(
        f"Bagging: {bagging['uncached_us_per_caption']:.1f} us/caption uncached, "
        f"{bagging['cached_us_per_caption']:.1f} us/caption cached ({bagging['captions']} captions)"
    )
    return "\n".join(lines) + "\n"


def benchmark_tables(result: dict, command: str) -> dict:
    """The run as entries of ``docs/benchmarks/results/bagformer.json`` (tables ``speed``,
    ``speed-ratios`` and, with index rows, ``speed-index``), for
    ``tools/misc/benchmark_tables.py``; every cell as the report writes it."""
    settings = result["settings"]
    measured = {
        "date": result.get("date"),
        "commit": result["machine"]["commit"][:7],
        "threads": "{} (1-minute load average {:.1f} before the run, {:.1f} at its end)".format(
            result["torch_threads"], result["load_average_before"][0], result["load_average_now"][0]
        ),
    }
    sizes = (
        f"ALBEF {result['albef_image_tokens']} image tokens, BagFormer "
        f"{result['bagformer_image_tokens']}; queries of {result['query_bags']} bags; "
        f"throughput over batches of {settings['query_batch']} queries"
    )
    tables = {
        "speed": {
            "caption": "One text-to-image query (latency) and a batch of queries (throughput) "
            f"through each pipeline at both models' full sizes ({sizes}), random weights, "
            "float32, pre-computed gallery features. Basis: `measured` end to end, `stages` "
            "the sum of measured stages, `scaled` from a timed chunk; a derived cell is "
            "rounded to the error of the checks it depends on.",
            "measured": measured,
            "command": command,
            "columns": [
                "N",
                "path",
                "k",
                "latency (ms)",
                "latency basis",
                "queries/s",
                "throughput basis",
            ],
            "rows": [
                [
                    f"{r['N']:,}",
                    r["path"],
                    r["k"] or "-",
                    _number(r["latency_ms"]),
                    _basis(r, "latency"),
                    _number(r["qps"]),
                    _basis(r, "throughput"),
                ]
                for r in result["rows"]
            ],
            "note": "Per candidate: an ITC dot product {itc_dot_us:.2g} us, a bag-wise "
            "MaxSim {maxsim_us:.0f} us, an ITM pass {albef_itm_ms:.0f} ms (ALBEF) and "
            "{bagformer_itm_ms:.0f} ms (BagFormer). Checks (full call against the sum or "
            "the scaled estimate, interleaved): ".format(**result["per_candidate"])
            + ", ".join(
                f"{name} {100 * check['error']:.1f}%" for name, check in result["checks"].items()
            )
            + ".",
        },
        "speed-ratios": {
            "caption": "ALBEF's two stages (ITC over the gallery, ITM re-rank of its top k) "
            "against BagFormer's recall over the whole gallery and its recall + rank (the "
            "top k re-scored by its fusion layers), from the table above: latency ALBEF over "
            "BagFormer, throughput BagFormer over ALBEF (above 1: BagFormer is faster). The "
            f"paper reports {PAPER['latency']}x lower latency and {PAPER['throughput']}x "
            "higher throughput than a single-encoder pipeline.",
            "measured": measured,
            "command": command,
            "columns": [
                "N",
                "k",
                "latency: ALBEF / recall",
                "latency: ALBEF / recall + rank",
                "throughput: recall / ALBEF",
                "throughput: recall + rank / ALBEF",
                "ratio error: recall / recall + rank",
            ],
            "rows": [
                [
                    f"{r['N']:,}",
                    r["k"],
                    f"{r['latency_ratio_recall']:.3g}x",
                    f"{r['latency_ratio_recall + rank']:.3g}x",
                    f"{r['throughput_ratio_recall']:.3g}x",
                    f"{r['throughput_ratio_recall + rank']:.3g}x",
                    f"±{100 * r['ratio_error_recall']:.0f}% / "
                    f"±{100 * r['ratio_error_recall + rank']:.0f}%",
                ]
                for r in result["ratios"]
            ],
            "note": "Slower than ALBEF: "
            + ("; ".join(result["slower_than_albef"]) or "never")
            + ".",
        },
    }
    index_rows = result.get("index_rows") or []
    if index_rows:
        ks = sorted(
            int(key[len("albef_k") : -len("_over_index")])
            for key in index_rows[0]
            if key.startswith("albef_k") and key.endswith("_over_index")
        )
        first = index_rows[0]
        tables["speed-index"] = {
            "caption": "BagFormer's recall through the token index (`TokenIndex`, "
            f"{first['index']} with {first['cells']} cells, {first['pq_bytes']}-byte codes "
            f"re-scored x{first['refine_factor']} from the stored float16 tokens, "
            f"{first['tokens_per_bag']} tokens fetched per bag, the exact bag-wise re-rank "
            "read from a memmap file) on a generated hard gallery at the model's full size "
            f"({result['bagformer_image_tokens']} tokens of 256-d an image: weakly "
            "clustered, queries shifted). Latency = the text encoding of one caption plus the "
            f"median search of {settings['index_queries']} queries; recall@10 against exact "
            "MaxSim over the whole gallery; the last columns are ALBEF's two stages at the "
            "same N over the index's latency.",
            "measured": measured,
            "command": command,
            "columns": [
                "N",
                "nprobe",
                "build (s)",
                "search (ms)",
                "latency (ms)",
                "recall@10 vs exact",
                "candidates",
                *(f"ALBEF k={k} / index" for k in ks),
            ],
            "rows": [
                [
                    f"{r['N']:,}",
                    r["nprobe"],
                    f"{r['build_s']:.0f}",
                    _number(r["search_ms"]),
                    _number(r["latency_ms"]),
                    f"{r['recall@10_vs_exact']:.2f}",
                    f"{r['mean_candidates']:,.0f}",
                    *(f"{r[f'albef_k{k}_over_index']:.3g}x" for k in ks),
                ]
                for r in index_rows
            ],
            "note": "Bagging layer: {uncached_us_per_caption:.0f} us a caption uncached, "
            "{cached_us_per_caption:.0f} us cached. Peak resident memory of the run "
            "{peak:.1f} GiB.".format(**result["bagging"], peak=result["peak_rss_gb"]),
        }
    return tables


def measuring_command(parser: argparse.ArgumentParser, settings: dict) -> str:
    """The command line that measured ``settings``: the flags that differ from the defaults."""
    words = ["OMP_NUM_THREADS=1", "python", "tools/analysis_tools/bagformer_speed.py"]
    for action in parser._actions:
        name = action.dest
        if name in ("help", "report_only") or name not in settings:
            continue
        value, default = settings[name], action.default
        if isinstance(default, Path):
            default = str(default)
        if value == default:
            continue
        values = value if isinstance(value, list) else [value]
        words += [action.option_strings[0], *(str(v) for v in values)]
    return " ".join(words)


def write_outputs(out: Path, result: dict, command: str) -> str:
    """results.json, report.md and tables.json (the docs' table entries); the report."""
    text = report(result)
    write_results(out, result, text)
    write_results(out, benchmark_tables(result, command), json_name="tables.json")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--albef-cfg-path",
        default=str(REPO / "retrieval_ext/configs/models/albef_retrieval_base.yaml"),
    )
    parser.add_argument("--albef-image-size", type=int, default=None, help="default: the config's")
    parser.add_argument(
        "--bagformer-cfg-path",
        default=str(REPO / "retrieval_ext/configs/models/bagformer_retrieval_base.yaml"),
    )
    parser.add_argument("--gallery", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--k-test", type=int, nargs="+", default=[16, 128, 256])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--query-batch", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=4096, help="images scored per timed chunk")
    parser.add_argument("--memory-gb", type=float, default=6.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="timing budget per call")
    parser.add_argument("--check-repeats", type=int, default=3)
    parser.add_argument("--check-queries", type=int, default=2)
    parser.add_argument("--index-gallery", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--index-kind", default="ivfpq", choices=["ivf", "ivfpq"])
    parser.add_argument("--index-cells", type=int, default=1024)
    parser.add_argument("--index-nprobe", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--index-refine-factor", type=int, default=4, help="0: codes only")
    parser.add_argument("--index-tokens-per-bag", type=int, default=256)
    parser.add_argument("--index-pq-bytes", type=int, default=32)
    parser.add_argument("--index-queries", type=int, default=10)
    parser.add_argument("--store-dir", type=Path, default=None, help="memmap files (default --out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--captions", default="data/image_text/annotations/test.json")
    parser.add_argument("--dictionary", default="data/image_text/entities.txt")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rewrite report.md and tables.json from --out's results.json",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        results = args.out / "results.json"
        if not results.is_file():
            raise FileNotFoundError(f"--report-only: no results.json in {args.out}")
        try:
            result = json.loads(results.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"--report-only: {results} is not valid JSON ({error})") from None
        # a results.json without a date: the day it was last written
        result.setdefault("date", time.strftime("%Y-%m-%d", time.gmtime(results.stat().st_mtime)))
        write_outputs(args.out, result, measuring_command(parser, result["settings"]))
        return 0
    if max(args.k_test) > min(args.gallery):
        raise ValueError(
            f"--k-test {max(args.k_test)} exceeds the smallest --gallery {min(args.gallery)}"
        )
    set_threads(args.threads)
    captions = read_caption_corpus([args.captions])
    albef = Albef(build_albef(args.albef_cfg_path, args.albef_image_size))
    bagformer = BagFormer(build_bagformer(args.bagformer_cfg_path, args.dictionary))
    with torch.no_grad():  # the bag count of the query the index rows search with
        query_bags = int(bagformer.encode(captions[:1])[2].shape[1])
    check_memory(args, bagformer.image_tokens, bagformer.embed_dim, query_bags)
    check_disk(args, bagformer.image_tokens, bagformer.embed_dim)
    run = Run(args, albef, bagformer, captions)
    run.result.update(
        {
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "albef_image_tokens": albef.image_tokens,
            "bagformer_image_tokens": bagformer.image_tokens,
            "torch_threads": torch.get_num_threads(),
            "machine": machine_stamp(),
            "load_average_before": os.getloadavg(),
            "paper_ratios": PAPER,
        }
    )
    run.measure()
    run.measure_index()
    run.result["bagging"] = bagging_cost(bagformer.model, captions)
    run.save()
    print(write_outputs(args.out, run.result, measuring_command(parser, run.result["settings"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
