# STH-R50 (../_base_/models/sth_r50.py), 8 frames, Something-Something V1 (rawframes):
# MMAction2's TANet sthv1 data recipe with MMAction2's TSM-R50 model (../_base_/sthv1-rgb_1x1x8.py)
# and the STH backbone.
_base_ = ["../_base_/models/sth_r50.py", "../_base_/sthv1-rgb_1x1x8.py"]

model = dict(backbone=dict(_base_.sth_r50, num_segments=_base_.num_segments))
