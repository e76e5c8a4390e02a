# TSM-MobileNetV2 on the data and recipe of the MobileNetV2-STH sthv2 config (both inherit
# ../_base_/sthv2-rgb_1x1x8.py; MMAction2 ships TSM-MobileNetV2 for Kinetics-400 only).
_base_ = ["../_base_/sthv2-rgb_1x1x8.py"]

model = dict(
    backbone=dict(
        _delete_=True,
        type="MobileNetV2TSM",
        pretrained="checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth",
        num_segments={{_base_.num_segments}},
        shift_div=8,
        norm_eval=False,
    ),
    cls_head=dict(in_channels=1280),
)
