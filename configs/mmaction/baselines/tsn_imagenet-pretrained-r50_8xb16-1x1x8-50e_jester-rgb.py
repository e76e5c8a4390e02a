# TSN-R50 (frame-order-blind) on the data and recipe of the STH config of the same name
# (both inherit ../_base_/jester-rgb_1x1x8.py).
_base_ = ["../_base_/jester-rgb_1x1x8.py"]

model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNet",
        depth=50,
        pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
        norm_eval=False,
    ),
    cls_head=dict(
        _delete_=True,
        type="TSNHead",
        num_classes=27,
        in_channels=2048,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.4,
        init_std=0.01,
        average_clips="prob",
    ),
)
