"""Defect 2 (stack.md): the mmaction2 1.2.0 wheel lacks localizers/drn."""

import pytest
from conftest import run_python


def test_mmaction_models_fail_to_import_without_the_fix():
    result = run_python("import mmaction.models")
    assert result.returncode != 0
    assert "No module named 'mmaction.models.localizers.drn'" in result.stderr


def test_mmaction_models_import_once_the_extension_is_imported():
    result = run_python("""
        import mmaction_ext
        from mmaction.models import Recognizer2D, ResNetTSM, TSMHead
        from mmaction.registry import MODELS
        assert MODELS.get('ResNetTSM') is ResNetTSM
        assert MODELS.get('DRN') is None, 'the stand-in must not enter the registry'
        print('ok')
    """)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_drn_stand_in_explains_itself_and_the_fix_is_idempotent():
    import mmaction_ext  # noqa: F401

    from mmaction.models.localizers import DRN

    from plugins.compat import provide_missing_drn_module

    with pytest.raises(ImportError, match="2714"):
        DRN()
    assert provide_missing_drn_module() is False


DECODE_BAD_VIDEO = """
    {fix}
    from plugins.video import moving_square_clip, write_mp4
    from mmaction.datasets.transforms import DecordDecode, DecordInit, SampleFrames
    data = write_mp4('good.mp4', moving_square_clip(num_frames=8, size=32)).read_bytes()
    open('truncated.mp4', 'wb').write(data[: len(data) // 3])
    results = DecordInit()(dict(filename='truncated.mp4'))
    DecordDecode()(SampleFrames(1, 1, 4)(results))
"""


def test_a_truncated_video_fails_without_its_name_without_the_fix(tmp_path):
    fix = "from plugins.compat import provide_missing_drn_module; provide_missing_drn_module()"
    result = run_python(DECODE_BAD_VIDEO.format(fix=fix), cwd=tmp_path)
    assert result.returncode != 0
    assert "Error reading" in result.stderr
    assert "truncated.mp4:" not in result.stderr


def test_a_truncated_video_is_named_with_the_fix(tmp_path):
    result = run_python(DECODE_BAD_VIDEO.format(fix="import mmaction_ext"), cwd=tmp_path)
    assert result.returncode != 0
    assert "RuntimeError: truncated.mp4: DecordInit could not read this video" in result.stderr


def test_a_corrupt_clip_in_a_video_dataset_stops_with_its_path(tiny_videos):
    import mmaction_ext  # noqa: F401

    from mmaction.datasets import VideoDataset
    from mmengine.registry import init_default_scope

    init_default_scope("mmaction")
    bad = tiny_videos / "videos" / "left_1.mp4"
    bad.write_bytes(b"not a video" * 50)
    dataset = VideoDataset(
        ann_file=str(tiny_videos / "train_list_videos.txt"),
        data_prefix=dict(video=str(tiny_videos / "videos")),
        pipeline=[
            dict(type="DecordInit"),
            dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=4),
            dict(type="DecordDecode"),
        ],
    )
    index = next(i for i in range(len(dataset)) if dataset.get_data_info(i)["filename"] == str(bad))
    with pytest.raises(RuntimeError, match=r"left_1\.mp4: DecordInit could not read"):
        dataset[index]
    assert len(dataset[0]["imgs"]) == 4  # good clips still load
