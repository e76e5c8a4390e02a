# TSN-R18 (frame-order-blind) on the embedded temporal benchmark: the benchmark's 2D ResNet-18
# with the TSN head of ../_base_/models/tsn_r50.py.
_base_ = ["../_base_/models/tsn_r50.py", "../_base_/motion-clips.py"]

model = dict(
    cls_head=dict(_base_.tsn_head, _delete_=True, num_classes=8, in_channels=512, dropout_ratio=0.2)
)
