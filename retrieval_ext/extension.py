"""Declaration read by plugzoo's discovery (entry point ``plugzoo.plugins: lavis``)."""

from plugins.catalogue import Extension, Plugin

CLIP4CLIP = Plugin(
    name="CLIP4Clip",
    paper="arXiv 2104.08860 (CLIP4Clip: CLIP for end-to-end video clip retrieval)",
    registry_names={
        "lavis.model": ["clip4clip_retrieval"],
        "lavis.task": ["text_video_retrieval"],
        "lavis.builder": [
            "msrvtt_text_video",
            "msvd_text_video",
            "didemo_text_video",
            "activitynet_text_video",
            "vatex_text_video",
            "embedded_text_video",
        ],
        "lavis.processor": ["clip4clip_video_train", "clip4clip_video_eval"],
        "lavis.runner": ["runner_portable"],
        "lavis.lr_scheduler": ["linear_warmup_cosine_group_lr", "warmup_cosine_progress_group_lr"],
    },
    configs=[
        "configs/lavis/clip4clip/embedded_meanP.yaml",
        "configs/lavis/clip4clip/embedded_seqTransf.yaml",
        "configs/lavis/clip4clip/finegrained_meanP.yaml",
        "configs/lavis/clip4clip/finegrained_seqTransf.yaml",
        "configs/lavis/clip4clip/msrvtt-9k_meanP.yaml",
        "configs/lavis/clip4clip/msrvtt-9k_seqTransf.yaml",
        "configs/lavis/clip4clip/msvd_seqTransf.yaml",
        "configs/lavis/clip4clip/didemo_seqTransf.yaml",
    ],
)

# every dataset TeachCLIP has configs for (X-Pool: not ActivityNet, where no teacher of
# the official recipe needs it)
TEACHCLIP_DATASETS = (
    "embedded",
    "finegrained",
    "msrvtt-9k",
    "msrvtt-7k",
    "msvd",
    "didemo",
    "activitynet",
    "vatex",
)

TEACHCLIP_TEACHERS = Plugin(
    name="TeachCLIP teachers",
    paper="arXiv 2308.01217 (TeachCLIP); X-CLIP (Ma et al. 2022) and X-Pool (Gorti et al. 2022)",
    registry_names={"lavis.model": ["xclip_retrieval", "xpool_retrieval"]},
    configs=[
        *(f"configs/lavis/teachclip/xclip_{dataset}.yaml" for dataset in TEACHCLIP_DATASETS),
        *(
            f"configs/lavis/teachclip/xpool_{dataset}.yaml"
            for dataset in TEACHCLIP_DATASETS
            if dataset != "activitynet"
        ),
        "configs/lavis/teachclip/xclip-temporal_embedded.yaml",
        "configs/lavis/teachclip/xpool-tuned_embedded.yaml",
    ],
)

TEACHCLIP = Plugin(
    name="TeachCLIP",
    paper="arXiv 2308.01217 (TeachCLIP: holistic features are almost sufficient for T2VR)",
    registry_names={"lavis.model": ["teachclip_retrieval"]},
    configs=[f"configs/lavis/teachclip/teachclip_{dataset}.yaml" for dataset in TEACHCLIP_DATASETS],
    demo_stage="retrieval_ext.demo:teachclip_stage",
    arxiv="2308.01217",
    readme="configs/lavis/teachclip/README.md",
    status=(
        "on clips with the caption in 1 of 8 frames the teachers and the taught student beat "
        "CLIP4Clip beyond the seed spread at its cost, but untaught AFA does as well"
    ),
)

IMAGE_TEXT = Plugin(
    name="Image-text retrieval (ALBEF baseline; BagFormer's ground)",
    paper="arXiv 2212.14322 (BagFormer); baseline: LAVIS's ALBEF (arXiv 2107.07651)",
    registry_names={
        "lavis.task": ["image_text_retrieval"],
        "lavis.builder": [
            "coco_karpathy_image_text",
            "flickr30k_image_text",
            "muge_image_text",
            "embedded_image_text",
        ],
    },
    configs=["configs/lavis/albef/embedded.yaml"],
)

BAGFORMER = Plugin(
    name="BagFormer",
    paper="arXiv 2212.14322 (BagFormer: bag-wise interaction for dual-encoder retrieval)",
    registry_names={"lavis.model": ["bagformer_retrieval"]},
    configs=[
        f"configs/lavis/bagformer/{dataset}.yaml"
        for dataset in ("embedded", "coco_karpathy", "flickr30k", "muge")
    ],
    demo_stage="retrieval_ext.demo:bagformer_stage",
    arxiv="2212.14322",
    readme="configs/lavis/bagformer/README.md",
    status=(
        "from one ALBEF pre-training, beats ALBEF's ITC + ITM re-rank (51.2 against 43.0 "
        "mean recall) and is level with its own CLS-only ablation (51.1); 19x lower latency "
        "than ALBEF's two stages at 10,000 images and k = 256, 8x higher at 100,000 images "
        "and k = 16"
    ),
)

EXTENSION = Extension(
    name="retrieval_ext",
    host="salesforce-lavis",
    host_module="lavis",
    plugins=(CLIP4CLIP, TEACHCLIP_TEACHERS, TEACHCLIP, IMAGE_TEXT, BAGFORMER),
    baseline_stage="retrieval_ext.demo:clip4clip_baseline_stage",
    host_title="LAVIS",
)
