# TSN-R50 (frame-order-blind) on the data and recipe of the STH config of the same name
# (both inherit ../_base_/hmdb51-split1-rgb_1x1x8.py), fine-tuned from its own Kinetics-400
# checkpoint.
_base_ = ["../_base_/hmdb51-split1-rgb_1x1x8.py"]

load_from = "checkpoints/tsn_r50_1x1x8_kinetics400.pth"  # local path: required
model = dict(
    backbone=dict(_delete_=True, type="ResNet", depth=50, pretrained=None, norm_eval=False),
    cls_head=dict(
        _delete_=True,
        type="TSNHead",
        num_classes=51,
        in_channels=2048,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.4,
        init_std=0.01,
        average_clips="prob",
    ),
)
