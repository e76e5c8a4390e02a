# TSN-R18 (frame-order-blind) on the embedded temporal benchmark.
_base_ = ["../_base_/motion-clips.py"]

model = dict(
    cls_head=dict(
        _delete_=True,
        type="TSNHead",
        num_classes=8,
        in_channels=512,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.2,
        init_std=0.01,
        average_clips="prob",
    )
)
