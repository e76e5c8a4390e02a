# STH-R50, 8 frames, 20BN-Jester: the Jester recipe of ../_base_/jester-rgb_1x1x8.py (MMAction2's
# TSM sthv2 recipe with Jester's data, no flip) with the STH backbone.
_base_ = ["../_base_/jester-rgb_1x1x8.py"]

model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetSTH",
        depth=50,
        pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        num_groups=4,  # G
        temporal_groups=1,  # r = 1/4 (assumption: the paper's r is not public)
        interleave=True,
        temporal_kernel=3,
        temporal_init="static",
    )
)
