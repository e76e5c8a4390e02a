"""LAVIS 1.0.2 changes decord's process-wide output type, which breaks MMAction2."""

from __future__ import annotations

import functools


def isolate_lavis_decord_bridge() -> bool:
    """Keep LAVIS's torch-tensor decoding from leaking into every other decord user.

    Upstream: no LAVIS issue tracks it. ``lavis/datasets/data_utils.py`` runs
    ``decord.bridge.set_bridge("torch")`` at import, switching decord's global output to
    torch tensors; MMAction2's ``DecordDecode`` then fails with "'Tensor' object has no
    attribute 'asnumpy'" in any process that imported LAVIS (one test session, one demo).
    The fix restores decord's native bridge and runs LAVIS's ``load_video`` (its only
    decord reader, which relies on the torch bridge) inside ``decord.bridge.use_torch()``.

    Returns:
        True if applied by this call.
    """
    import decord
    from lavis.datasets import data_utils
    from lavis.processors import alpro_processors

    if getattr(data_utils.load_video, "_plugzoo_torch_bridge", False):
        return False
    lavis_load_video = data_utils.load_video

    @functools.wraps(lavis_load_video)
    def load_video(*args, **kwargs):
        with decord.bridge.use_torch():
            return lavis_load_video(*args, **kwargs)

    load_video._plugzoo_torch_bridge = True
    for module in (data_utils, alpro_processors):
        module.load_video = load_video
    decord.bridge.reset_bridge()
    return True
