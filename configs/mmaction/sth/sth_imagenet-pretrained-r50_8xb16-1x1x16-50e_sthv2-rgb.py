# STH-R50, 16 frames, Something-Something V2 (MMAction2's TSM-R50 16f sthv2 recipe).
_base_ = ["mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py"]

custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

num_segments = 16
model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetSTH",
        depth=50,
        pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
        norm_eval=False,
        num_segments=num_segments,
        num_groups=4,
        temporal_groups=1,
    ),
    cls_head=dict(num_segments=num_segments),
)

# MMAction2's 16f recipe sets `test_dataloader = dict(pipeline=...)` without `dataset=`, so
# its test loader keeps the 8-frame pipeline of the 8f recipe and, with twice_sample, feeds
# two 8-frame samplings to a 16-segment model as if they were one clip. Use the 16f one.
test_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline}}, test_mode=True))
