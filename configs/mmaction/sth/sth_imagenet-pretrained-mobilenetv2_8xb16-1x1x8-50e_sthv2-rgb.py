# MobileNetV2-STH, 8 frames, Something-Something V2: the sthv2 data recipe of MMAction2's
# TSM configs with MMAction2's TSM-MobileNetV2 model and the backbone swapped to STH.
# 2D weights: an MMAction2/MMPretrain-format MobileNetV2 ImageNet checkpoint as a local file.
_base_ = ["./sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py"]

num_segments = 8
model = dict(
    backbone=dict(
        _delete_=True,
        type="MobileNetV2STH",
        pretrained="checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth",
        num_segments=num_segments,
        num_groups=4,
        temporal_groups=1,
        norm_eval=False,
    ),
    cls_head=dict(in_channels=1280, num_segments=num_segments),
)
