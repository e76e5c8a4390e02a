# TSM-R18, random init: ./tsm_r50.py at ResNet-18 depth (with pretrained=None, ResNetTSM also
# needs pretrained2d=False). How configs use this file: ./sth_r50.py.
_base_ = ["./tsm_r50.py"]

tsm_r18 = dict(_base_.tsm_r50, depth=18, pretrained=None, pretrained2d=False)
