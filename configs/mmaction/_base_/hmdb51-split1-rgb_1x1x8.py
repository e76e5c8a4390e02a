# HMDB-51 split 1, 8 frames, fine-tuning from a Kinetics-400 checkpoint that each config names
# in `load_from` (a local path). MMAction2 1.2.0 ships no HMDB-51 RGB recipe: this follows its
# TSM recipes (./sthv2-rgb_1x1x8.py: VideoDataset, 8x1x1 sampling, TSMHead) with HMDB-51's
# data and a 25-epoch fine-tune schedule. The STH, TSM and TSN configs that inherit this file
# (each beside its model in ./models/) set only `model` and `load_from`.
_base_ = ["./sthv2-rgb_1x1x8.py"]

model = dict(cls_head=dict(num_classes=51))

data_root = "data/hmdb51/videos"
ann_file_train = "data/hmdb51/hmdb51_train_split_1_videos.txt"
ann_file_val = "data/hmdb51/hmdb51_val_split_1_videos.txt"

train_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=8),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(-1, 256)),
    dict(
        type="MultiScaleCrop",
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1,
        num_fixed_crops=13,
    ),
    dict(type="Resize", scale=(224, 224), keep_ratio=False),
    dict(type="Flip", flip_ratio=0.5),  # HMDB-51 classes are not direction-sensitive
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]
val_pipeline = [
    dict(type="DecordInit"),
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=8, test_mode=True),
    dict(type="DecordDecode"),
    dict(type="Resize", scale=(-1, 256)),
    dict(type="CenterCrop", crop_size=224),
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]
test_pipeline = val_pipeline

# the recipe's loaders (VideoDataset; test_mode on val and test) with HMDB-51's lists; the test
# loader keeps the recipe's batch size (1) and workers
train_dataloader = dict(
    dataset=dict(
        ann_file=ann_file_train, data_prefix=dict(video=data_root), pipeline=train_pipeline
    )
)
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root), pipeline=val_pipeline)
)
test_dataloader = val_dataloader

train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=25, val_begin=1, val_interval=1)
param_scheduler = [
    dict(type="MultiStepLR", begin=0, end=25, by_epoch=True, milestones=[10, 20], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.00125))  # 8 GPUs x 16 clips, fine-tuning
