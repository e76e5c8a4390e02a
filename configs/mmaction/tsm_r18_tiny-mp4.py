# MMAction2's TSM recipe (Recognizer2D + ResNetTSM + TSMHead) shrunk to run on a CPU in
# seconds: ResNet-18, 4 segments of 32x32 frames, random init, 2 training iterations.
# It is the config the foundation tests run through every MMAction2 entry point:
#   mim train mmaction2 configs/mmaction/tsm_r18_tiny-mp4.py --cfg-options ...
#   python <mmaction>/.mim/tools/train.py configs/mmaction/tsm_r18_tiny-mp4.py
#   torchrun --nproc_per_node 2 <mmaction>/.mim/tools/train.py <this> --launcher pytorch
# Data and schedule: ./_base_/tiny-mp4.py, shared with ./sth/sth_r18_tiny-mp4.py.
_base_ = ["./_base_/tiny-mp4.py"]

model = dict(
    backbone=dict(
        type="ResNetTSM",
        depth=18,
        pretrained=None,
        pretrained2d=False,  # with pretrained=None, ResNetTSM needs this
        norm_eval=False,
        num_segments={{_base_.num_segments}},
        shift_div=8,
    ),
)
