# TSM-R50 (../_base_/models/tsm_r50.py) on the data and recipe of the STH config of the same
# name (both inherit ../_base_/hmdb51-split1-rgb_1x1x8.py), fine-tuned from its own
# Kinetics-400 checkpoint.
_base_ = ["../_base_/models/tsm_r50.py", "../_base_/hmdb51-split1-rgb_1x1x8.py"]

load_from = "checkpoints/tsm_r50_1x1x8_kinetics400.pth"  # local path: required
model = dict(
    backbone=dict(
        _base_.tsm_r50,
        _delete_=True,
        pretrained=None,
        pretrained2d=False,  # weights come from load_from
        num_segments=_base_.num_segments,
    )
)
