# TSM-MobileNetV2 (../_base_/models/tsm_mobilenet_v2.py) on the data and recipe of the
# MobileNetV2-STH sthv2 config (both inherit ../_base_/sthv2-rgb_1x1x8.py; MMAction2 ships
# TSM-MobileNetV2 for Kinetics-400 only).
_base_ = ["../_base_/models/tsm_mobilenet_v2.py", "../_base_/sthv2-rgb_1x1x8.py"]

model = dict(
    backbone=dict(_base_.tsm_mobilenet_v2, _delete_=True, num_segments=_base_.num_segments),
    cls_head=dict(in_channels=1280),
)
