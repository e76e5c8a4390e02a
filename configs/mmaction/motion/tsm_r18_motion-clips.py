# TSM-R18 (../_base_/models/tsm_r18.py, from scratch) on the embedded temporal benchmark.
_base_ = ["../_base_/models/tsm_r18.py", "../_base_/motion-clips.py"]

model = dict(
    backbone=dict(_base_.tsm_r18, num_segments=_base_.num_segments), cls_head=dict(is_shift=True)
)
