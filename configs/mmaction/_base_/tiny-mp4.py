# Small mp4 lists, 4 segments of 32x32 frames, 2 training iterations: MMAction2's TSM recipe
# (Recognizer2D + TSMHead, ImageNet normalisation, SGD with TSMOptimWrapperConstructor)
# shrunk to run on a CPU in seconds. The TSM and STH configs that inherit this file set only
# the backbone of `model` (from ./models/ at ResNet-18 depth, random init).
# Data: a VideoDataset list file ("relative/path.mp4 label" per line) under data_root.
_base_ = ["mmaction::_base_/default_runtime.py"]

# importing mmaction_ext applies plugzoo's host fixes (mmaction2 1.2.0 wheel, torch>=2.6
# checkpoints, CPU torchrun); plugin backbones register here too
custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

num_segments = 4
model = dict(
    type="Recognizer2D",
    cls_head=dict(
        type="TSMHead",
        num_classes=2,
        in_channels=512,
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

dataset_type = "VideoDataset"
data_root = "data/tiny_mp4/videos"
ann_file_train = "data/tiny_mp4/train_list_videos.txt"
ann_file_val = "data/tiny_mp4/val_list_videos.txt"

train_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=num_segments),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(32, 32), keep_ratio=False),
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]
val_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=num_segments, test_mode=True),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(32, 32), keep_ratio=False),
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="AccMetric")
test_evaluator = val_evaluator

train_cfg = dict(type="IterBasedTrainLoop", max_iters=2, val_interval=2)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

optim_wrapper = dict(
    constructor="TSMOptimWrapperConstructor",
    paramwise_cfg=dict(fc_lr5=True),
    optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=20, norm_type=2),
)
param_scheduler = []

default_hooks = dict(
    logger=dict(type="LoggerHook", interval=1),
    checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False),
)
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=False)
