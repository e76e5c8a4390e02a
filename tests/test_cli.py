import subprocess
import sys

from plugins import cli, doctor
from plugins.doctor import Check


def test_list_prints_every_extension(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("recbole_ext", "mmaction_ext", "retrieval_ext"):
        assert name in out


def test_list_markdown_prints_the_papers_table(capsys):
    from plugins.catalogue import papers_table

    assert cli.main(["list", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == papers_table() + "\n"
    assert out.startswith("| paper | host | registered names | README | status |")
    for paper in ("UPSR", "STH", "TeachCLIP", "BagFormer"):
        assert f"| {paper} ([arXiv " in out


def test_doctor_exits_nonzero_and_names_the_failed_check(monkeypatch, capsys):
    monkeypatch.setattr(
        doctor,
        "run_checks",
        lambda: [Check("ok thing", True, "fine"), Check("broken thing", False, "because")],
    )
    assert cli.main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "because" in captured.out
    assert "broken thing" in captured.err


def test_doctor_console_command_passes_on_this_environment():
    result = subprocess.run(
        [sys.executable, "-m", "plugins.cli", "doctor"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout


def test_demo_rejects_an_unknown_stage(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit, match="unknown stage"):
        cli.main(["demo", "--out", str(tmp_path), "--stage", "nowhere:nothing"])


def test_plugin_commands_get_their_own_arguments(monkeypatch, capsys):
    import pytest

    from plugins.catalogue import load_catalogue

    commands = {
        name: spec
        for extension in load_catalogue()
        for plugin in extension.plugins
        for name, spec in plugin.commands.items()
    }
    assert commands["upsr-text"] == "recbole_ext.text.report:main"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["upsr-text", "--help"])
    assert exit_info.value.code == 0
    assert "usage: plugzoo upsr-text" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["list", "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
