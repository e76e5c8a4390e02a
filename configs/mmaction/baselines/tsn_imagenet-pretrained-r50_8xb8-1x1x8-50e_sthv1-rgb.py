# TSN-R50 (frame-order-blind) on the same data and recipe as the STH config in _base_.
_base_ = ["../sth/sth_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py"]

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
        num_classes=174,
        in_channels=2048,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.4,
        init_std=0.01,
        average_clips="prob",
    ),
)
