# STH-R50, 8 frames, Something-Something V2: MMAction2's TSM-R50 sthv2 recipe
# (../_base_/sthv2-rgb_1x1x8.py: data, flip label map, schedule, TSMHead) with the backbone
# swapped for STH-R50 (../_base_/models/sth_r50.py: torchvision's ResNet-50 as a local file,
# converted to STH when the backbone initialises).
_base_ = ["../_base_/models/sth_r50.py", "../_base_/sthv2-rgb_1x1x8.py"]

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
