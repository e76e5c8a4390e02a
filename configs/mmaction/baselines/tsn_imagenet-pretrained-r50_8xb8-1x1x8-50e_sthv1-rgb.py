# TSN-R50 (frame-order-blind; ../_base_/models/tsn_r50.py) on the data and recipe of the STH
# config of the same name (both inherit ../_base_/sthv1-rgb_1x1x8.py).
_base_ = ["../_base_/models/tsn_r50.py", "../_base_/sthv1-rgb_1x1x8.py"]

model = dict(
    backbone=_base_.tsn_r50,
    cls_head=dict(_base_.tsn_head, _delete_=True, num_classes=174),
)
