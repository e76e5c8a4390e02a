# TSM-R50 on the data and recipe of the STH config of the same name (both inherit
# ../_base_/sthv1-rgb_1x1x8.py), for side-by-side runs.
_base_ = ["../_base_/sthv1-rgb_1x1x8.py"]

model = dict(
    backbone=dict(
        type="ResNetTSM",
        depth=50,
        pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        shift_div=8,
    )
)
