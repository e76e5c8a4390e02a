# TSN-R50 (frame-order-blind): the backbone and head of MMAction2's _base_/models/tsn_r50.py,
# with torchvision's ResNet-50 weights as a local file. Each config sets the head's
# `num_classes` (and `in_channels` on a ResNet-18). How configs use this file: ./sth_r50.py.
tsn_r50 = dict(
    type="ResNet",
    depth=50,
    pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
    norm_eval=False,
)
tsn_head = dict(
    type="TSNHead",
    in_channels=2048,
    spatial_type="avg",
    consensus=dict(type="AvgConsensus", dim=1),
    dropout_ratio=0.4,
    init_std=0.01,
    average_clips="prob",
)
