# STH-R50 (../_base_/models/sth_r50.py), 16 frames, Something-Something V2: MMAction2's TSM-R50
# 16f sthv2 recipe (../_base_/sthv2-rgb_1x1x16.py) with the backbone swapped.
_base_ = ["../_base_/models/sth_r50.py", "../_base_/sthv2-rgb_1x1x16.py"]

model = dict(backbone=dict(_base_.sth_r50, _delete_=True, num_segments=_base_.num_segments))
