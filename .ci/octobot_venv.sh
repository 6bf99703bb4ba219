#!/usr/bin/env bash
# Creates (or reuses) the Python 3.12 venv with the real OctoBot 2.1.1 used by tests/test_octobot_real.py.
# OctoBot 2.1.1 needs Python >= 3.12 and bundles its own octobot-trading stack: it lives in its own venv,
# never in the project's 3.11 .venv. Cached between runs at
#   ${OCTOBOT_SIGNALS_CACHE:-$HOME/.cache/octobot-signals}/py312-octobot
# Prints the venv path on its last line.
set -euo pipefail

OCTOBOT_VERSION="2.1.1"
CACHE="${OCTOBOT_SIGNALS_CACHE:-$HOME/.cache/octobot-signals}"
VENV="$CACHE/py312-octobot"

is_ready() {
  # the console entry answers and the installed distribution is the pinned one
  [ -x "$VENV/bin/OctoBot" ] && [ -x "$VENV/bin/python" ] \
    && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('octobot') != '$OCTOBOT_VERSION')" 2>/dev/null \
    && "$VENV/bin/OctoBot" --version >/dev/null 2>&1
}

find_python312() {
  for candidate in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /root/.pyenv/versions/3.12.1/bin/python3.12 \
                   /usr/local/bin/python3.12 /usr/bin/python3.12; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

if is_ready; then
  echo "octobot venv: reusing $VENV (octobot $OCTOBOT_VERSION)" >&2
  echo "$VENV"
  exit 0
fi

PYTHON=$(find_python312) || {
  echo "octobot venv: Python 3.12 not found; installing it with apt" >&2
  apt-get update -qq && apt-get install -y -qq python3.12 python3.12-venv >/dev/null
  PYTHON=$(find_python312)
}

echo "octobot venv: creating $VENV with $PYTHON (octobot==$OCTOBOT_VERSION, ~90 s)" >&2
rm -rf "$VENV.partial"
mkdir -p "$CACHE"
"$PYTHON" -m venv --prompt py312-octobot "$VENV.partial"
"$VENV.partial/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$VENV.partial/bin/python" -m pip install -q "octobot==$OCTOBOT_VERSION" 2>&1 | grep -v "^WARNING: Location" >&2 || true
# venvs hold absolute paths: build under .partial, then rebuild the scripts in place under the final name
rm -rf "$VENV"
mv "$VENV.partial" "$VENV"
"$PYTHON" -m venv --upgrade "$VENV" >/dev/null
grep -rlI --exclude-dir=__pycache__ "$VENV.partial" "$VENV/bin" | xargs -r sed -i "s|$VENV.partial|$VENV|g"
if ! is_ready; then
  echo "octobot venv: installation failed ($VENV/bin/OctoBot --version does not answer)" >&2
  exit 1
fi
echo "octobot venv: ready" >&2
echo "$VENV"
