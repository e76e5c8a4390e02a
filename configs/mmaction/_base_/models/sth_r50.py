# STH-R50: ResNet-50 with STH's spatio-temporal hybrid convolution in every bottleneck
# (mmaction_ext/models/backbones/resnet_sth.py). 2D weights: torchvision's ResNet-50 as a local
# file, converted to STH when the backbone initialises. ResNet-18 variants override `depth` and
# `pretrained`, as MMAction2's R101 configs override the depth of its R50 ones.
#
# Like MMAction2's _base_/models/*.py, a file of this folder holds one model, and a config
# inherits it beside its dataset base. Each dataset base of ../ already sets `model`
# (recogniser, head, preprocessing; most inherit it with an MMAction2 recipe), and mmengine
# refuses two bases that set the same key, so the files here name the parts a model brings (its
# backbone, and TSN's head) and a config swaps them in, overriding only what differs:
#   _base_ = ["../_base_/models/sth_r50.py", "../_base_/sthv2-rgb_1x1x8.py"]
#   model = dict(backbone=dict(_base_.sth_r50, _delete_=True, num_segments=_base_.num_segments))
# (`_delete_` where the dataset base's model already has a backbone to replace.)
sth_r50 = dict(
    type="ResNetSTH",
    depth=50,
    pretrained="checkpoints/torchvision/resnet50-0676ba61.pth",
    norm_eval=False,
    num_groups=4,  # G
    temporal_groups=1,  # r = 1/4 (assumption: the paper's r is not public)
)
