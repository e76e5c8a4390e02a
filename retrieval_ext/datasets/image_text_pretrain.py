"""LAVIS dataset builder for pre-training on the embedded image-text data.

LAVIS's pre-training builders (``coco_caption``, ``conceptual_caption_3m`` ..., what
``albef_pretrain`` trains on) build a ``train`` split of ``{"image", "text_input"}`` pairs
and nothing to evaluate. This one does the same from the training annotations of the
embedded data, with the retrieval builder's datasets (their training items are LAVIS's
pairs, ``image_id`` added), so a pre-training never reads the validation or test images.
"""

from __future__ import annotations

from retrieval_ext.datasets.image_text_builders import LocalImageTextBuilder

from lavis.common.registry import registry


@registry.register_builder("embedded_image_text_pretrain")
class EmbeddedImageTextPretrainBuilder(LocalImageTextBuilder):
    """The training split of ``tools/data/lavis/make_image_text_dataset.py``'s data alone."""

    DATASET_CONFIG_DICT = {"default": "embedded_image_text_pretrain.yaml"}

    def build(self):
        splits = set(self.config.build_info.annotations)
        if splits != {"train"}:
            raise ValueError(
                "embedded_image_text_pretrain: build_info.annotations must name the train "
                f"split alone (pre-training never sees held-out images); got {sorted(splits)}"
            )
        return super().build()
