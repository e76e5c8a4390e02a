# TSM-MobileNetV2: the backbone of MMAction2's _base_/models/tsm_mobilenet_v2.py with the
# MobileNetV2 ImageNet checkpoint of ./sth_mobilenet_v2.py as a local file. Its head takes 1280
# channels (each config sets `in_channels`). How configs use this file: ./sth_r50.py.
tsm_mobilenet_v2 = dict(
    type="MobileNetV2TSM",
    pretrained="checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth",
    shift_div=8,
    norm_eval=False,
)
