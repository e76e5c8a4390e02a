# MobileNetV2-STH: MMAction2's TSM-MobileNetV2 (_base_/models/tsm_mobilenet_v2.py) with STH's
# hybrid convolution in place of the shift. 2D weights: an MMAction2/MMPretrain-format
# MobileNetV2 ImageNet checkpoint as a local file. Its head takes 1280 channels (each config
# sets `in_channels`). How configs use this file: ./sth_r50.py.
sth_mobilenet_v2 = dict(
    type="MobileNetV2STH",
    pretrained="checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth",
    num_groups=4,
    temporal_groups=1,
    norm_eval=False,
)
