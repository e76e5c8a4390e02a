"""The LAVIS stages of ``plugzoo demo``, one module per paper.

- ``clip4clip``: the host baseline, CLIP4Clip meanP against seqTransf on generated clips;
- ``teachclip``: the TeachCLIP student beside its two teachers and CLIP4Clip seqTransf on
  clips whose caption is shown in 1 of 8 frames, with each one's per-query cost;
- ``bagformer``: BagFormer's bag-wise recall and merge beside ALBEF's ITC and ITM re-rank,
  with each path's per-query cost;
- ``common``: what they share (dataset options, per-query timing, the cost plot).

The stage functions are importable from here too (``retrieval_ext.demo:teachclip_stage``
is how the catalogue names them).
"""

from retrieval_ext.demo.bagformer import bagformer_stage
from retrieval_ext.demo.clip4clip import clip4clip_baseline_stage
from retrieval_ext.demo.common import data_options
from retrieval_ext.demo.teachclip import teachclip_stage

__all__ = ["bagformer_stage", "clip4clip_baseline_stage", "data_options", "teachclip_stage"]
