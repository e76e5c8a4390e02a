from .motion_clips import CLASSES, make_clip, write_motion_dataset

__all__ = ["CLASSES", "make_clip", "write_motion_dataset"]
