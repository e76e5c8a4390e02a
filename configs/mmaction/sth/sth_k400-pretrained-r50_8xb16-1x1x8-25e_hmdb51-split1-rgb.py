# STH-R50, 8 frames, HMDB-51 split 1 (../_base_/hmdb51-split1-rgb_1x1x8.py), fine-tuned from an
# STH-R50 Kinetics-400 checkpoint given as a local file (load_from; e.g. one trained with
# MMAction2's TSM-R50 k400 recipe and the STH backbone).
_base_ = ["../_base_/hmdb51-split1-rgb_1x1x8.py"]

load_from = "checkpoints/sth_r50_1x1x8_kinetics400.pth"  # local path: required
model = dict(
    backbone=dict(
        _delete_=True,
        type="ResNetSTH",
        depth=50,
        pretrained=None,  # every weight comes from load_from
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        num_groups=4,  # G
        temporal_groups=1,  # r = 1/4 (assumption: the paper's r is not public)
        interleave=True,
        temporal_kernel=3,
        temporal_init="static",
    )
)
