# Sourced by scripts/train and scripts/test: makes sure .venv exists and holds the project
# installed in editable mode with the given extras, then sets $PY to its interpreter.
#
#   ensure_venv EXTRAS      e.g. ensure_venv test
#
# The install is redone when pyproject.toml changes: .venv/.senryu-EXTRAS.stamp holds the hash of
# the pyproject.toml it was installed from. Set PYTHON to choose the interpreter that creates .venv.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

die() { echo "scripts: error: $*" >&2; exit 1; }

ensure_venv() {
  local extras="$1"
  local stamp="$VENV/.senryu-$extras.stamp"
  local want
  want="$(cksum < "$ROOT/pyproject.toml")" || die "cannot read $ROOT/pyproject.toml"

  # A venv whose interpreter no longer runs (moved, Python upgraded) is rebuilt from scratch.
  if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "scripts: $VENV is broken; recreating it" >&2
    rm -rf "$VENV"
  fi
  if [ ! -d "$VENV" ]; then
    local base="${PYTHON:-python3}"
    command -v "$base" >/dev/null 2>&1 || die "'$base' not found: install Python >= 3.11 (or set PYTHON)"
    "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || die "$("$base" --version 2>&1) is too old: senryu needs Python >= 3.11 (set PYTHON=python3.11 or newer)"
    echo "scripts: creating $VENV" >&2
    "$base" -m venv "$VENV" || die "'$base -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
  fi

  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "scripts: installing senryu[$extras] into .venv (new or changed pyproject.toml; the first install downloads JAX: a few minutes)" >&2
    (cd "$ROOT" && "$VENV/bin/python" -m pip install -qq --disable-pip-version-check \
        --editable ".[$extras]") \
      || die "pip install of '.[$extras]' failed (see above; for pip's full output run:" \
             "$VENV/bin/python -m pip install -e '.[$extras]')"
    echo "$want" > "$stamp"
  fi
  PY="$VENV/bin/python"
}
