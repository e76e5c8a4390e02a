"""Models registered in LAVIS's registry: CLIP4Clip, the TeachCLIP teachers and student,
and BagFormer."""

from retrieval_ext.models.bagformer import BagFormerOutput, BagFormerRetrieval
from retrieval_ext.models.clip4clip import CLIP4ClipOutput, CLIP4ClipRetrieval, load_openai_clip
from retrieval_ext.models.teachclip import TeachCLIPOutput, TeachCLIPRetrieval
from retrieval_ext.models.teacher import RetrievalTeacher, TeacherOutput
from retrieval_ext.models.xclip import XCLIPRetrieval
from retrieval_ext.models.xpool import XPoolRetrieval

__all__ = [
    "BagFormerOutput",
    "BagFormerRetrieval",
    "CLIP4ClipOutput",
    "CLIP4ClipRetrieval",
    "RetrievalTeacher",
    "TeachCLIPOutput",
    "TeachCLIPRetrieval",
    "TeacherOutput",
    "XCLIPRetrieval",
    "XPoolRetrieval",
    "load_openai_clip",
]
