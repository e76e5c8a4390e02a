# TSM-R50 on the same data and recipe as the STH config in _base_ (side-by-side runs).
_base_ = ["../sth/sth_k400-pretrained-r50_8xb16-1x1x8-25e_hmdb51-split1-rgb.py"]

load_from = "checkpoints/tsm_r50_1x1x8_kinetics400.pth"  # local path: required
model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetTSM",
        depth=50,
        pretrained=None,
        pretrained2d=False,  # weights come from load_from
        norm_eval=False,
        num_segments=8,
        shift_div=8,
    )
)
