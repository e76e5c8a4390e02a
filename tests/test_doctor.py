import pytest

from plugins.catalogue import Extension, Plugin
from plugins.doctor import (
    check_extension,
    check_offline_minilm,
    check_pins,
    check_video_roundtrip,
    read_pins,
    registry_has,
)


def test_read_pins_parses_the_repository_pin_files():
    pins = read_pins()
    assert pins["recbole"] == "1.2.1"
    assert pins["mmaction2"] == "1.2.0"
    assert pins["salesforce-lavis"] == "1.0.2"
    assert pins["torch"] == "2.14.1"


def test_read_pins_names_file_and_line_of_a_bad_entry(tmp_path):
    bad = tmp_path / "pins.txt"
    bad.write_text("# comment\nnumpy==2.4.6\nrecbole>=1.0\n")
    with pytest.raises(ValueError, match=r"pins.txt:3: expected 'name==version'"):
        read_pins([bad])


def test_read_pins_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        read_pins([tmp_path / "nothere.txt"])


def test_check_pins_passes_here_and_names_a_mismatch():
    assert check_pins(read_pins()).ok
    wrong = check_pins({"numpy": "0.0.1", "no-such-dist-plugzoo": "1.0"})
    assert not wrong.ok
    assert "numpy" in wrong.detail and "0.0.1" in wrong.detail
    assert "no-such-dist-plugzoo missing" in wrong.detail


def test_pin_check_ignores_rays_bundled_packages():
    # ray puts older psutil/colorama at the front of sys.path once imported
    import recbole_ext  # noqa: F401  (imports ray through recbole.quick_start)

    import recbole.quick_start  # noqa: F401

    assert check_pins(read_pins()).ok


@pytest.mark.parametrize(
    ("registry", "name", "expected"),
    [
        ("mmaction.MODELS", "ResNetTSM", True),
        ("mmaction.MODELS", "NoSuchBackbone", False),
        ("lavis.model", "clip", True),
        ("lavis.task", "retrieval", True),
        ("lavis.runner", "runner_base", True),
        ("lavis.lr_scheduler", "linear_warmup_cosine_lr", True),
        ("lavis.model", "no_such_model", False),
        ("recbole.model", "SASRec", True),
        ("recbole.model", "NoSuchRecommender", False),
    ],
)
def test_registry_has_reads_the_real_host_registries(registry, name, expected):
    import mmaction_ext  # noqa: F401
    import recbole_ext  # noqa: F401
    import retrieval_ext  # noqa: F401

    assert registry_has(registry, name) is expected


def test_registry_has_rejects_unknown_registries():
    import mmaction_ext  # noqa: F401

    with pytest.raises(ValueError, match="NO_SUCH"):
        registry_has("mmaction.NO_SUCH", "x")
    with pytest.raises(ValueError, match="gadget"):
        registry_has("lavis.gadget", "x")


def test_check_extension_reports_names_missing_from_the_registry():
    ext = Extension(
        name="mmaction_ext",
        host="mmaction2",
        host_module="mmaction",
        plugins=(
            Plugin(
                name="Demo",
                paper="-",
                registry_names={"mmaction.MODELS": ["ResNetTSM", "NotRegistered"]},
            ),
        ),
    )
    checks = {c.name: c for c in check_extension(ext)}
    assert checks["mmaction2 imports"].ok
    assert checks["mmaction.models imports"].ok
    assert not checks["Demo registered"].ok
    assert "mmaction.MODELS:NotRegistered" in checks["Demo registered"].detail


def test_check_extension_reports_an_import_failure():
    ext = Extension(name="no_such_extension_pkg", host="nohost", host_module="nohost")
    (check,) = check_extension(ext)
    assert not check.ok and "no_such_extension_pkg" in check.detail


def test_video_roundtrip_and_offline_minilm_pass_here():
    video = check_video_roundtrip()
    assert video.ok, video.detail
    minilm = check_offline_minilm()
    assert minilm.ok, minilm.detail


def test_a_malformed_plugin_declaration_is_a_failed_check_not_a_crash():
    ext = Extension(
        name="mmaction_ext",
        host="mmaction2",
        host_module="mmaction",
        plugins=(Plugin(name="Broken", paper="-", registry_names={"nohost.MODELS": ["X"]}),),
    )
    checks = {c.name: c for c in check_extension(ext)}
    assert not checks["Broken registered"].ok
    assert "nohost" in checks["Broken registered"].detail
