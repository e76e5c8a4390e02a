# 20BN-Jester, 8 frames (27 gestures, distributed as jpg frames). MMAction2 ships no Jester
# recipe: this is its TSM sthv2 recipe (./sthv2-rgb_1x1x8.py) with Jester's data and no
# horizontal flip (flipping turns "Swiping Left" into "Swiping Right", and Jester has no
# flip map). The STH, TSM and TSN configs that inherit this file (each beside its model in
# ./models/) set only `model`.
_base_ = ["./sthv2-rgb_1x1x8.py"]

model = dict(cls_head=dict(num_classes=27))

dataset_type = "RawframeDataset"
data_root = "data/jester/rawframes"
ann_file_train = "data/jester/jester_train_list_rawframes.txt"
ann_file_val = "data/jester/jester_val_list_rawframes.txt"

train_pipeline = [
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=8),
    dict(type="RawFrameDecode"),
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
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]
val_pipeline = [
    dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=8, test_mode=True),
    dict(type="RawFrameDecode"),
    dict(type="Resize", scale=(-1, 256)),
    dict(type="CenterCrop", crop_size=224),
    dict(type="FormatShape", input_format="NCHW"),
    dict(type="PackActionInputs"),
]
test_pipeline = val_pipeline

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(img=data_root),
        filename_tmpl="{:05}.jpg",
        pipeline=train_pipeline,
    )
)
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(img=data_root),
        filename_tmpl="{:05}.jpg",
        pipeline=val_pipeline,
        test_mode=True,
    )
)
# merged into the recipe's test loader, whose batch size (1) and workers stay
test_dataloader = val_dataloader
