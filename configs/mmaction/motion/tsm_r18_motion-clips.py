# TSM-R18 on the embedded temporal benchmark.
_base_ = ["../_base_/motion-clips.py"]

model = dict(
    backbone=dict(
        type="ResNetTSM", num_segments={{_base_.num_segments}}, shift_div=8, pretrained2d=False
    ),
    cls_head=dict(is_shift=True),
)
