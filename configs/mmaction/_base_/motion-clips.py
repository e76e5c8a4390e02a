# The embedded temporal benchmark (mmaction_ext/datasets/motion_clips.py): 8 classes that
# differ only in the direction of motion, 8 frames of 32x32, ResNet-18 from scratch.
# Generate the data first:  python tools/data/mmaction/make_motion_clips.py data/motion_clips
# The STH, TSM and TSN configs of ../motion/ inherit this file (each beside its model in
# ./models/) and set only `model`: STH and TSM replace the 2D ResNet-18 below by their backbone
# (TSM also shifts in its head), TSN keeps it and uses TSNHead.
_base_ = ["mmaction::_base_/default_runtime.py"]

custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

num_segments = 8
model = dict(
    type="Recognizer2D",
    backbone=dict(type="ResNet", depth=18, pretrained=None, norm_eval=False),
    cls_head=dict(
        type="TSMHead",
        num_classes=8,
        in_channels=512,
        num_segments=num_segments,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.2,
        init_std=0.01,
        is_shift=False,
        average_clips="prob",
    ),
    data_preprocessor=dict(
        type="ActionDataPreprocessor", mean=[127.5] * 3, std=[64.0] * 3, format_shape="NCHW"
    ),
)

dataset_type = "VideoDataset"
data_root = "data/motion_clips"

# no Flip: mirroring swaps left/right and clockwise/anticlockwise labels
train_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=num_segments),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(32, 32), keep_ratio=False),
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]
test_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=num_segments, test_mode=True),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(32, 32), keep_ratio=False),
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]


train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=f"{data_root}/train_list_videos.txt",
        data_prefix=dict(video=f"{data_root}/videos"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=f"{data_root}/val_list_videos.txt",
        data_prefix=dict(video=f"{data_root}/videos"),
        pipeline=test_pipeline,
        test_mode=True,
    ),
)
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=f"{data_root}/test_list_videos.txt",
        data_prefix=dict(video=f"{data_root}/videos"),
        pipeline=test_pipeline,
        test_mode=True,
    ),
)
val_evaluator = dict(type="AccMetric")
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_begin=1, val_interval=1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

optim_wrapper = dict(
    constructor="TSMOptimWrapperConstructor",
    paramwise_cfg=dict(fc_lr5=False),
    optimizer=dict(type="AdamW", lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=20, norm_type=2),
)
param_scheduler = [dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min=1e-5, by_epoch=True)]

default_hooks = dict(
    logger=dict(type="LoggerHook", interval=20),
    checkpoint=dict(
        type="CheckpointHook", interval=1, max_keep_ckpts=1, save_best="acc/top1", rule="greater"
    ),
)
randomness = dict(seed=0, deterministic=False)
