# TSM-R50 on the same data and recipe as the STH config in _base_ (side-by-side runs).
_base_ = ["../sth/sth_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py"]

model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetTSM",
        depth=50,
        pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
        norm_eval=False,
        num_segments=8,
        shift_div=8,
    )
)
