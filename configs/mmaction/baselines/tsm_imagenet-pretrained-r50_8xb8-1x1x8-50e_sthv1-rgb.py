# TSM-R50 (../_base_/models/tsm_r50.py) on the data and recipe of the STH config of the same
# name (both inherit ../_base_/sthv1-rgb_1x1x8.py), for side-by-side runs.
_base_ = ["../_base_/models/tsm_r50.py", "../_base_/sthv1-rgb_1x1x8.py"]

model = dict(backbone=dict(_base_.tsm_r50, num_segments=_base_.num_segments))
