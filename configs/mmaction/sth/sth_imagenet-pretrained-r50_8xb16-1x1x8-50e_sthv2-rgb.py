# STH-R50, 8 frames, Something-Something V2: MMAction2's TSM-R50 sthv2 recipe
# (../_base_/sthv2-rgb_1x1x8.py: data, flip label map, schedule, TSMHead) with the backbone
# swapped. ImageNet weights: torchvision's ResNet-50 as a local file (resnet50-0676ba61.pth),
# converted to STH when the backbone initialises.
_base_ = ["../_base_/sthv2-rgb_1x1x8.py"]

pretrained_2d = "checkpoints/torchvision/resnet50-0676ba61.pth"
model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetSTH",
        depth=50,
        pretrained=pretrained_2d,
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        num_groups=4,  # G
        temporal_groups=1,  # r = 1/4 (assumption: the paper's r is not public)
        interleave=True,
        temporal_kernel=3,
        temporal_init="static",
    )
)
