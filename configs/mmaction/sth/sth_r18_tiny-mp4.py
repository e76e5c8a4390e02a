# STH-R18 on small mp4 lists: the data and schedule of ../tsm_r18_tiny-mp4.py (both inherit
# ../_base_/tiny-mp4.py) with the STH backbone, run by the tests through every MMAction2
# entry point (Runner, mim train, tools/train.py + tools/test.py, torchrun DDP).
_base_ = ["../_base_/tiny-mp4.py"]

model = dict(
    backbone=dict(
        type="ResNetSTH",
        depth=18,
        pretrained=None,
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        num_groups=4,
        temporal_groups=1,
    )
)
