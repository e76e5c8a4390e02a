#!/usr/bin/env bash
# Create (or reuse) the plugzoo virtual environment and link it as ./.venv.
#
# The environment is keyed by a hash of the pin files, so a clone whose pins have not
# changed reuses the cached one (CI runs in a fresh clone on the same machine). It lives
# outside the repository, under $PLUGZOO_VENV_ROOT (default ~/.cache/plugzoo/venvs).
#
# Two-step install (why, and why each pin: docs/environment.md): requirements/base.txt with
# dependencies, then requirements/hosts.txt with --no-deps, then plugzoo itself, editable.
#
# Usage: bash tools/setup_env.sh            # idempotent; prints the venv path at the end
#        PLUGZOO_PYTHON=/path/python3.11 bash tools/setup_env.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PLUGZOO_PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "setup_env: plugzoo needs Python 3.11; $python is $("$python" --version 2>&1)." >&2
    echo "setup_env: point PLUGZOO_PYTHON at a Python 3.11 interpreter." >&2
    exit 1
fi

# bump when the install steps below change, so cached environments are rebuilt
recipe=2
# comments and blank lines are not part of the key: editing a pin's reason rebuilds nothing
key=$(cat "$repo/requirements/base.txt" "$repo/requirements/hosts.txt" | sed -e 's/#.*//' -e '/^[[:space:]]*$/d' \
      | cat - <("$python" -c 'import platform, sys; print(sys.version, platform.machine())') \
      <(echo "recipe $recipe") | sha256sum | cut -c1-16)
root=${PLUGZOO_VENV_ROOT:-$HOME/.cache/plugzoo/venvs}
venv=$root/py311-$key
start=$(date +%s)

if [[ -f $venv/.plugzoo-complete ]]; then
    echo "setup_env: reusing $venv (pins unchanged)"
else
    echo "setup_env: creating $venv"
    rm -rf "$venv"
    mkdir -p "$root"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade "pip==25.3"
    echo "setup_env: step 1/2, resolved dependencies (requirements/base.txt)"
    "$venv/bin/python" -m pip install --progress-bar off -r "$repo/requirements/base.txt"
    echo "setup_env: step 2/2, hosts without their declared dependencies (requirements/hosts.txt)"
    "$venv/bin/python" -m pip install --progress-bar off --no-deps -r "$repo/requirements/hosts.txt"
    touch "$venv/.plugzoo-complete"
fi

# Editable install of this checkout (cheap). The cached environment is shared by every
# checkout on this machine and points at whichever one ran this script last: run it again
# after working in (or deleting) another clone.
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$repo"
ln -sfn "$venv" "$repo/.venv"

# The export check's cache (plugins/export/sources.py): the hosts' pinned sdists and the
# pinned formatters and linters (requirements/export.txt), fetched once into ~/.cache/plugzoo/export
# (or $PLUGZOO_EXPORT_CACHE), outside the environment so its key is unchanged. Offline,
# the export tests that need them skip and say why.
if ! (cd "$repo" && "$venv/bin/python" -m plugins.export.sources); then
    echo "setup_env: warning: the export cache could not be filled (no registry access?)" >&2
fi
echo "setup_env: ready in $(( $(date +%s) - start )) s: $repo/.venv -> $venv"
