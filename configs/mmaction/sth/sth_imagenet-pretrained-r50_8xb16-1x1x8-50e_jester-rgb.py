# STH-R50 (../_base_/models/sth_r50.py), 8 frames, 20BN-Jester: the Jester recipe of
# ../_base_/jester-rgb_1x1x8.py (MMAction2's TSM sthv2 recipe with Jester's data, no flip) with
# the STH backbone.
_base_ = ["../_base_/models/sth_r50.py", "../_base_/jester-rgb_1x1x8.py"]

model = dict(
    backbone=dict(
        _base_.sth_r50,
        _delete_=True,
        num_segments=_base_.num_segments,
        interleave=True,
        temporal_kernel=3,
        temporal_init="static",
    )
)
