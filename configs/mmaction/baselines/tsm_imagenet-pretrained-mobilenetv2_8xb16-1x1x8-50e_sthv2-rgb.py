# TSM-MobileNetV2 on the same data and recipe as the MobileNetV2-STH config in _base_
# (MMAction2 ships TSM-MobileNetV2 for Kinetics-400 only). For side-by-side runs.
_base_ = ["../sth/sth_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-50e_sthv2-rgb.py"]

model = dict(
    backbone=dict(
        _delete_=True,
        type="MobileNetV2TSM",
        pretrained="checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth",
        num_segments=8,
        shift_div=8,
        norm_eval=False,
    )
)
