"""Tasks registered in LAVIS's registry."""

from retrieval_ext.tasks.image_text_retrieval import ImageTextRetrievalTask, image_text_metrics
from retrieval_ext.tasks.text_video_retrieval import TextVideoRetrievalTask, retrieval_metrics

__all__ = [
    "ImageTextRetrievalTask",
    "TextVideoRetrievalTask",
    "image_text_metrics",
    "retrieval_metrics",
]
