#!/usr/bin/env bash
# Builds mixerclient's Python extension into the source tree, for plain `python`/`pytest`
# (Bazel builds its own, //mixerclient/python:_mixerclient.so). Usage:
#   mixerclient/python/build_extension.sh PYTHON OUTPUT
# Same flags as the Bazel targets: the core without exceptions or RTTI, nanobind and the
# binding with them.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=$1
OUTPUT=$2
CXX=${CXX:-g++}

read -r NB_DIR PY_INCLUDE < <("$PYTHON" -c 'import nanobind, sysconfig; print(nanobind.source_dir().rsplit("/src", 1)[0], sysconfig.get_paths()["include"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/gen/mixerclient"
"$PYTHON" mixerclient/gen_global_dictionary.py api/mixer/v1/global_dictionary.yaml \
  -o "$work/gen/mixerclient/global_dictionary_data.inc"

CORE_FLAGS=(-std=c++17 -O2 -fPIC -fno-exceptions -fno-rtti -I. -I"$work/gen")
NB_FLAGS=(-std=c++17 -O2 -fPIC -fvisibility=hidden -DNDEBUG -DNB_COMPACT_ASSERTIONS
  -I"$PY_INCLUDE" -I"$NB_DIR/include" -I"$NB_DIR/ext/robin_map/include")

jobs=()
for src in mixerclient/*.cc; do
  case "$src" in *_test.cc) continue ;; esac
  obj="$work/$(basename "${src%.cc}").o"
  "$CXX" "${CORE_FLAGS[@]}" -c "$src" -o "$obj" &
  jobs+=($!)
  if (( ${#jobs[@]} >= 2 )); then wait "${jobs[0]}"; jobs=("${jobs[@]:1}"); fi
done
"$CXX" "${NB_FLAGS[@]}" -fno-strict-aliasing -w -c "$NB_DIR/src/nb_combined.cpp" -o "$work/nanobind.o" &
jobs+=($!)
"$CXX" "${NB_FLAGS[@]}" -I. -c mixerclient/python/binding.cc -o "$work/binding.o"
for j in "${jobs[@]}"; do wait "$j"; done

"$CXX" -shared -Wl,--gc-sections "$work"/*.o -o "$work/ext.so"
mv -f "$work/ext.so" "$OUTPUT"
