# STH-R50, 16 frames, Something-Something V2 (MMAction2's TSM-R50 16f sthv2 recipe,
# ../_base_/sthv2-rgb_1x1x16.py) with the backbone swapped.
_base_ = ["../_base_/sthv2-rgb_1x1x16.py"]

model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetSTH",
        depth=50,
        pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        num_groups=4,
        temporal_groups=1,
    )
)
