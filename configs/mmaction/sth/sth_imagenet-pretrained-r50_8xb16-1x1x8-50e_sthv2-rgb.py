# STH-R50, 8 frames, Something-Something V2: MMAction2's TSM-R50 sthv2 recipe (data, flip
# label map {86<->87, 93<->94, 166<->167}, schedule, TSMHead) with the backbone swapped, so
# that numbers compare apples to apples with
#   mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py
#   mmaction::recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x8-50e_sthv2-rgb.py
# Data: see README "STH" (videos under data/sthv2/videos, list files from MMAction2's
# tools/data/sthv2). ImageNet weights: torchvision's ResNet-50 as a local file
# (resnet50-0676ba61.pth), converted to STH when the backbone initialises.
_base_ = ["mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py"]

custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

num_segments = 8
pretrained_2d = "checkpoints/torchvision/resnet50-0676ba61.pth"
model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetSTH",
        depth=50,
        pretrained=pretrained_2d,
        norm_eval=False,
        num_segments=num_segments,
        num_groups=4,  # G
        temporal_groups=1,  # r = 1/4 (assumption: the paper's r is not public)
        interleave=True,
        temporal_kernel=3,
        temporal_init="static",
    ),
    cls_head=dict(num_segments=num_segments),
)
