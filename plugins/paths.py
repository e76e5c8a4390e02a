"""Where the repository's configs and pin files are (plugzoo is installed editable)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"
PIN_FILES = (REPO_ROOT / "requirements" / "base.txt", REPO_ROOT / "requirements" / "hosts.txt")
