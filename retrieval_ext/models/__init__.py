"""Models registered in LAVIS's registry."""

from retrieval_ext.models.clip4clip import CLIP4ClipOutput, CLIP4ClipRetrieval, load_openai_clip

__all__ = ["CLIP4ClipOutput", "CLIP4ClipRetrieval", "load_openai_clip"]
