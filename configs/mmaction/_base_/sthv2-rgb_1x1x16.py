# Something-Something V2, 16 frames: MMAction2's TSM-R50 16-frame sthv2 recipe, with a test
# loader that runs (below). The STH and TSM configs that inherit this file set only `model`
# (STH swaps in its backbone from ./models/).
# `model` is the recipe's TSM-R50 (16 segments) until a config replaces its backbone.
_base_ = ["mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py"]

custom_imports = dict(imports=["mmaction_ext"], allow_failed_imports=False)

num_segments = 16

# MMAction2's 16f recipe writes `test_dataloader = dict(pipeline=..., test_mode=True)`: the
# keys land on the DataLoader, not its dataset, so `mim test` stops with "DataLoader.__init__()
# got an unexpected keyword argument 'pipeline'". This is the 8f recipe's test loader with the
# 16-frame test pipeline (2 samplings x 3 crops of 16 frames, each a whole clip).
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        ann_file={{_base_.ann_file_val}},
        data_prefix=dict(video={{_base_.data_root}}),
        pipeline={{_base_.test_pipeline}},
        test_mode=True,
    ),
)
