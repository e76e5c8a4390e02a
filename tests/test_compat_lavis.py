"""LAVIS switches decord to torch output at import; MMAction2's decoding then breaks."""

import torch
from conftest import run_python

MMACTION_DECODE = """
    import numpy as np
    {imports}
    from plugins.video import moving_square_clip, write_mp4
    from mmaction.datasets.transforms import DecordDecode, DecordInit
    path = write_mp4('clip.mp4', moving_square_clip(num_frames=4, size=32))
    results = DecordInit()(dict(filename=str(path)))
    results['frame_inds'] = np.arange(4)
    frames = DecordDecode()(results)['imgs']
    print('decoded', len(frames), type(frames[0]).__name__)
"""


def test_mmaction_decoding_breaks_once_lavis_is_imported(tmp_path):
    imports = "import mmaction_ext\n    import lavis"
    result = run_python(MMACTION_DECODE.format(imports=imports), cwd=tmp_path)
    assert result.returncode != 0
    assert "'Tensor' object has no attribute 'asnumpy'" in result.stderr


def test_mmaction_decodes_beside_lavis_with_the_fix(tmp_path):
    imports = "import mmaction_ext\n    import retrieval_ext"
    result = run_python(MMACTION_DECODE.format(imports=imports), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "decoded 4 ndarray" in result.stdout


def test_lavis_load_video_still_returns_torch_tensors(tmp_path):
    import retrieval_ext  # noqa: F401

    from lavis.datasets import data_utils
    from lavis.processors import alpro_processors

    from plugins.compat import isolate_lavis_decord_bridge
    from plugins.video import decode_decord, moving_square_clip, write_mp4

    path = write_mp4(tmp_path / "clip.mp4", moving_square_clip(num_frames=4, size=32))
    clip = alpro_processors.load_video(str(path), n_frms=4)
    assert isinstance(clip, torch.Tensor) and clip.shape == (3, 4, 32, 32)
    assert alpro_processors.load_video is data_utils.load_video
    assert decode_decord(path).shape == (4, 32, 32, 3)  # native bridge outside LAVIS
    assert isolate_lavis_decord_bridge() is False


SYNC_STATS = """
    import os
    import torch.distributed as dist
    {imports}
    from lavis.common.logger import SmoothedValue
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}")
    dist.init_process_group("gloo", rank=0, world_size=1)
    value = SmoothedValue()
    value.update(2.0, n=3)
    value.synchronize_between_processes()
    print("synced", value.count, value.total)
"""


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_lavis_training_stats_sync_needs_cuda_without_the_fix(tmp_path):
    code = SYNC_STATS.format(imports="import lavis", port=_free_port())
    result = run_python(code, cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode != 0
    assert "CUDA" in result.stderr or "cuda" in result.stderr


def test_lavis_training_stats_sync_over_gloo_with_the_fix(tmp_path):
    code = SYNC_STATS.format(imports="import retrieval_ext", port=_free_port())
    result = run_python(code, cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    assert "synced 3 6.0" in result.stdout
