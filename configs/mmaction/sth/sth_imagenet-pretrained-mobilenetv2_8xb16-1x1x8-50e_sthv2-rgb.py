# MobileNetV2-STH, 8 frames, Something-Something V2: the sthv2 recipe of MMAction2's TSM
# configs (../_base_/sthv2-rgb_1x1x8.py) with MMAction2's TSM-MobileNetV2 model and the
# backbone swapped to STH.
# 2D weights: an MMAction2/MMPretrain-format MobileNetV2 ImageNet checkpoint as a local file.
_base_ = ["../_base_/sthv2-rgb_1x1x8.py"]

model = dict(
    backbone=dict(
        _delete_=True,
        type="MobileNetV2STH",
        pretrained="checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth",
        num_segments={{_base_.num_segments}},
        num_groups=4,
        temporal_groups=1,
        norm_eval=False,
    ),
    cls_head=dict(in_channels=1280),
)
