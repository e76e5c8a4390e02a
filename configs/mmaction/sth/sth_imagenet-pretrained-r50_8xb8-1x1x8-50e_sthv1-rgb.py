# STH-R50, 8 frames, Something-Something V1 (rawframes): MMAction2's TANet sthv1 data recipe
# with MMAction2's TSM-R50 model (../_base_/sthv1-rgb_1x1x8.py) and the STH backbone.
_base_ = ["../_base_/sthv1-rgb_1x1x8.py"]

model = dict(
    backbone=dict(
        type="ResNetSTH",
        depth=50,
        pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        num_groups=4,
        temporal_groups=1,
    )
)
