# MMAction2's TSM recipe (Recognizer2D + ResNetTSM + TSMHead) shrunk to run on a CPU in
# seconds: ResNet-18 (./_base_/models/tsm_r18.py, random init), 4 segments of 32x32 frames,
# 2 training iterations.
# It is the config the foundation tests run through every MMAction2 entry point:
#   mim train mmaction2 configs/mmaction/tsm_r18_tiny-mp4.py --cfg-options ...
#   python <mmaction>/.mim/tools/train.py configs/mmaction/tsm_r18_tiny-mp4.py
#   torchrun --nproc_per_node 2 <mmaction>/.mim/tools/train.py <this> --launcher pytorch
# Data and schedule: ./_base_/tiny-mp4.py, shared with ./sth/sth_r18_tiny-mp4.py.
_base_ = ["./_base_/models/tsm_r18.py", "./_base_/tiny-mp4.py"]

model = dict(backbone=dict(_base_.tsm_r18, num_segments=_base_.num_segments))
