# STH-R18 (r = 1/4) on the embedded temporal benchmark.
_base_ = ["../_base_/motion-clips.py"]

model = dict(
    backbone=dict(
        type="ResNetSTH",
        num_segments={{_base_.num_segments}},
        num_groups=4,
        temporal_groups=1,
        temporal_init="random",
    )
)
