"""Tasks registered in LAVIS's registry."""

from retrieval_ext.tasks.text_video_retrieval import TextVideoRetrievalTask, retrieval_metrics

__all__ = ["TextVideoRetrievalTask", "retrieval_metrics"]
