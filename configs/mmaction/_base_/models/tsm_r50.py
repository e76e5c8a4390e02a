# TSM-R50: the backbone of MMAction2's _base_/models/tsm_r50.py (ResNetTSM, 1/8 of the channels
# shifted) with torchvision's ResNet-50 weights as a local file. ResNet-18 variants override
# `depth` and `pretrained`. How configs use this file: ./sth_r50.py.
tsm_r50 = dict(
    type="ResNetTSM",
    depth=50,
    pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
    norm_eval=False,
    shift_div=8,
)
