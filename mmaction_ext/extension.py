"""Declaration read by plugzoo's discovery (entry point ``plugzoo.plugins: mmaction2``)."""

from plugins.catalogue import Extension, Plugin

STH = Plugin(
    name="STH",
    paper="arXiv 2003.08042 (STH: Spatio-Temporal Hybrid Convolution)",
    registry_names={
        "mmaction.MODELS": ["STHConv", "STHDepthwiseConv", "ResNetSTH", "MobileNetV2STH"]
    },
    configs=[
        "configs/mmaction/sth/sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py",
        "configs/mmaction/sth/sth_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py",
        "configs/mmaction/sth/sth_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py",
        "configs/mmaction/sth/sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_jester-rgb.py",
        "configs/mmaction/sth/sth_k400-pretrained-r50_8xb16-1x1x8-25e_hmdb51-split1-rgb.py",
        "configs/mmaction/sth/sth_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-50e_sthv2-rgb.py",
        "configs/mmaction/motion/sth_r18_motion-clips.py",
    ],
    demo_stage="mmaction_ext.demo:sth_motion_stage",
    arxiv="2003.08042",
    readme="configs/mmaction/sth/README.md",
    status=(
        "fewer parameters and FLOPs than TSM, as claimed; under equal CPU treatment 1.07-1.09x "
        "TSM's inference speed but 0.94-1.03x TSN's (docs/benchmarks/sth.md)"
    ),
)

EXTENSION = Extension(
    name="mmaction_ext",
    host="mmaction2",
    host_module="mmaction",
    plugins=(STH,),
    host_title="MMAction2",
)
