# MMAction2's TSM-R50 16f sthv2 recipe with its test loader fixed to sample 16 frames (the
# shipped recipe tests with the 8f pipeline: see ../sth/*1x1x16*). For side-by-side runs.
_base_ = ["mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py"]

custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

test_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline}}, test_mode=True))
