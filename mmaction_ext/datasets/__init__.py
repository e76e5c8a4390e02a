from .motion_clips import CLASSES, LEVELS, make_clip, write_motion_dataset

__all__ = ["CLASSES", "LEVELS", "make_clip", "write_motion_dataset"]
