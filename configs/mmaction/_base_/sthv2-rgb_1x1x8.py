# Something-Something V2, 8 frames: MMAction2's TSM-R50 sthv2 recipe (VideoDataset, flip label
# map {86<->87, 93<->94, 166<->167}, 8 GPUs x 16 clips, SGD for 50 epochs). The STH and TSM
# configs that inherit this file (each beside its model in ./models/) set only `model`; their
# data, evaluation, schedule and optimiser are this recipe's, so numbers compare with
#   mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py
#   mmaction::recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x8-50e_sthv2-rgb.py
# Data: videos under data/sthv2/videos, list files from MMAction2's tools/data/sthv2.
# `model` is the recipe's TSM-R50 (174 classes, 8 segments) until a config replaces its
# backbone.
_base_ = ["mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py"]

# importing mmaction_ext applies plugzoo's host fixes; plugin backbones register here too
custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

num_segments = 8
model = dict(cls_head=dict(num_segments=num_segments))
