# STH-R18 on small mp4 lists: the data and schedule of ../tsm_r18_tiny-mp4.py (both inherit
# ../_base_/tiny-mp4.py) with the STH backbone (../_base_/models/sth_r18.py, random init), run by
# the tests through every MMAction2 entry point (Runner, mim train, tools/train.py +
# tools/test.py, torchrun DDP).
_base_ = ["../_base_/models/sth_r18.py", "../_base_/tiny-mp4.py"]

model = dict(backbone=dict(_base_.sth_r18, num_segments=_base_.num_segments))
