# STH-R18, random init: ./sth_r50.py at ResNet-18 depth, as MMAction2's R101 configs override
# the depth of its R50 ones. How configs use this file: ./sth_r50.py.
_base_ = ["./sth_r50.py"]

sth_r18 = dict(_base_.sth_r50, depth=18, pretrained=None)
