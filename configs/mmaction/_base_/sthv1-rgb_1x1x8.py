# Something-Something V1, 8 frames (rawframes): MMAction2's TANet sthv1 recipe
# (RawframeDataset, '{:05}.jpg' frames, flip label map {2<->4, 30<->41, 52<->66}, 8 GPUs x 8
# clips, the TSM schedule) with the model of MMAction2's TSM-R50 recipes (Recognizer2D,
# TSMHead, ImageNet normalisation). The STH, TSM and TSN configs that inherit this file set
# only `model`: each adds its backbone from ./models/ (TSN also its head).
_base_ = ["mmaction::recognition/tanet/tanet_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py"]

custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

num_segments = 8
model = dict(
    _delete_=True,
    type="Recognizer2D",
    cls_head=dict(
        type="TSMHead",
        num_classes=174,
        in_channels=2048,
        num_segments=num_segments,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.5,
        init_std=0.001,
        is_shift=True,
        average_clips="prob",
    ),
    data_preprocessor=dict(
        type="ActionDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape="NCHW",
    ),
)
