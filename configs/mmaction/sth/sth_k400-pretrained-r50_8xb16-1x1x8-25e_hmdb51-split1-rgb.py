# STH-R50 (../_base_/models/sth_r50.py), 8 frames, HMDB-51 split 1
# (../_base_/hmdb51-split1-rgb_1x1x8.py), fine-tuned from an STH-R50 Kinetics-400 checkpoint
# given as a local file (load_from; e.g. one trained with MMAction2's TSM-R50 k400 recipe and the
# STH backbone).
_base_ = ["../_base_/models/sth_r50.py", "../_base_/hmdb51-split1-rgb_1x1x8.py"]

load_from = "checkpoints/sth_r50_1x1x8_kinetics400.pth"  # local path: required
model = dict(
    backbone=dict(
        _base_.sth_r50,
        _delete_=True,
        pretrained=None,  # every weight comes from load_from
        num_segments=_base_.num_segments,
        interleave=True,
        temporal_kernel=3,
        temporal_init="static",
    )
)
