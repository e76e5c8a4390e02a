# STH-R18 (r = 1/4; ../_base_/models/sth_r18.py, from scratch) on the embedded temporal
# benchmark.
_base_ = ["../_base_/models/sth_r18.py", "../_base_/motion-clips.py"]

model = dict(
    backbone=dict(_base_.sth_r18, num_segments=_base_.num_segments, temporal_init="random")
)
