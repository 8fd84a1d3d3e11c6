#!/usr/bin/env bash
# The test command: builds the two test profiles (virtual environments) when missing or stale,
# then runs ruff and the whole test suite in each.
#
#   bash dev/test.sh                 # both profiles
#   PROFILES=forge bash dev/test.sh  # one profile
#   bash dev/test.sh -k grammar      # extra arguments go to pytest
#
# Profiles: requirements/a1111.txt (what AUTOMATIC1111 1.10.1 pins) and requirements/forge.txt
# (what Forge pins), each plus requirements/test.txt and llama-cpp-python 0.3.36; forge also carries
# requirements/ray.txt (the Ray engine's tests run there and skip in a1111).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PROFILES=${PROFILES:-"a1111 forge"}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
LLAMA_VERSION=0.3.36
LLAMA_CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
# No pip cache: a fresh machine gains nothing from it, and a profile's wheels would lie on disk twice.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_CACHE_DIR=1
# Disk a profile takes when built (a1111 ~1.6 GB; forge ~6.5 GB, a CUDA build of torch): say so up front.
PROFILE_GB=${PROFILE_GB:-8}

say() { printf '[test] %s\n' "$*"; }

# llama-cpp-python has no wheel on PyPI: use the portable one beside the project when present,
# else compile it once from PyPI's source and keep the wheel for every profile and later runs.
llama_wheel() {
  local shared
  shared=$(ls "$root"/../shared/wheels/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [[ -n "$shared" ]]; then echo "$shared"; return; fi
  local cache="$root/.cache/wheels"
  mkdir -p "$cache"
  local built
  built=$(ls "$cache"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
  if [[ -z "$built" ]]; then
    say "compiling llama-cpp-python $LLAMA_VERSION (once, 4-7 minutes)" >&2
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$PYTHON" -m pip wheel -q --no-deps -w "$cache" \
      "llama-cpp-python==$LLAMA_VERSION" >&2
    built=$(ls "$cache"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n 1)
  fi
  echo "$built"
}

# Requirements a profile carries beyond its host's and the tools: the forge profile runs the Ray engine's tests.
profile_extras() {
  if [[ $1 == forge ]]; then echo requirements/ray.txt; fi
}

ensure_profile() {
  local profile=$1 venv="$root/.venvs/$1"
  local stamp extra
  extra=$(profile_extras "$profile")
  stamp=$(cat requirements/"$profile".txt requirements/test.txt $extra dev/test.sh | sha256sum | cut -c1-16)
  if [[ -f "$venv/.stamp" && "$(cat "$venv/.stamp")" == "$stamp" ]]; then
    return
  fi
  say "building profile $profile in .venvs/$profile"
  rm -rf "$venv"
  local free_gb
  free_gb=$(df -Pk "$root" | awk 'NR == 2 {print int($4 / 1048576)}')
  if (( free_gb < PROFILE_GB )); then
    say "warning: ${free_gb} GB free on this disk; building a profile may need up to ${PROFILE_GB} GB"
  fi
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r requirements/"$profile".txt -r requirements/test.txt ${extra:+-r "$extra"}
  "$venv/bin/python" -m pip install -q "$(llama_wheel)"
  echo "$stamp" > "$venv/.stamp"
}

# The browser tests drive Debian's chromium (and the emoji font our tool buttons use); install
# them when we may.
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && [[ -d /usr/share/fonts/truetype/noto ]] && return
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null) \
      || say "chromium could not be installed: browser tests will be skipped"
  else
    say "chromium is missing and cannot be installed here: browser tests will be skipped"
  fi
}

ensure_chromium
for profile in $PROFILES; do ensure_profile "$profile"; done

first=${PROFILES%% *}
say "ruff check"
"$root/.venvs/$first/bin/ruff" check .

status=0
for profile in $PROFILES; do
  say "pytest in profile $profile"
  TAGGER_TEST_PROFILE=$profile "$root/.venvs/$profile/bin/python" -m pytest -q -p no:cacheprovider "$@" \
    || status=$?
done
exit $status
