# MobileNetV2-STH (../_base_/models/sth_mobilenet_v2.py), 8 frames, Something-Something V2: the
# sthv2 recipe of MMAction2's TSM configs (../_base_/sthv2-rgb_1x1x8.py) with MMAction2's
# TSM-MobileNetV2 model and the backbone swapped to STH.
_base_ = ["../_base_/models/sth_mobilenet_v2.py", "../_base_/sthv2-rgb_1x1x8.py"]

model = dict(
    backbone=dict(_base_.sth_mobilenet_v2, _delete_=True, num_segments=_base_.num_segments),
    cls_head=dict(in_channels=1280),
)
