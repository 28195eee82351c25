#!/usr/bin/env bash
# Installs what the project needs on this machine, and nothing twice:
#   Debian packages (Bazel), the virtual environment from requirements.lock, generated protos.
# Every step checks first, so a second run on a ready machine takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# mixerclient (C++ core, its wasm32-wasi build and its tests) and the proxies' WebAssembly
# filters: clang/lld with wasi-libc and libc++ for wasm32, gtest, and Node's WASI to run the
# wasm build's self-test.
APT_PACKAGES=(bazel-bootstrap redis-server clang lld wasi-libc libc++-14-dev-wasm32
  libc++abi-14-dev-wasm32 libclang-rt-14-dev-wasm32 libgtest-dev nodejs)
# Observability: Prometheus (started by make bookinfo) and Chromium for the mesh page's
# browser tests (driven headless over the DevTools protocol). The page's npm packages are
# installed with the npm of this machine's nodejs package (which ships npm here), or
# Debian's `npm` where nodejs comes without it.
APT_PACKAGES+=(prometheus chromium)
command -v npm >/dev/null || APT_PACKAGES+=(npm)
# The config store's tests drive the real kubectl: Debian's when the machine has none of its own.
command -v kubectl >/dev/null || APT_PACKAGES+=(kubernetes-client)
# Transparent interception: `istio-iptables` writes its rules with iptables-restore, and the
# platform's pod network namespaces and veth pairs are made with iproute2's `ip`.
APT_PACKAGES+=(iptables iproute2)
# The data-plane benchmarks (tools/bench/dataplane.py, filter_cpu.py) load Envoy with hey.
APT_PACKAGES+=(hey)
VENV=.venv
UV_VERSION=$(sed -n "s/^uv==//p" requirements.lock)

log() { printf 'setup: %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "setup: Python 3.11 or newer is required as python3" >&2; exit 1; }
  python3 -m venv "$VENV"
fi
[ -x "$VENV/bin/uv" ] || "$VENV/bin/python" -m pip install -q "uv==$UV_VERSION"

# Sync the environment to the lock only when the lock changed since the last sync.
lock_sum=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ "$(cat "$VENV/.lock-synced" 2>/dev/null)" != "$lock_sum" ]; then
  log "installing Python packages from requirements.lock"
  "$VENV/bin/uv" pip sync --quiet --python "$VENV/bin/python" requirements.lock
  echo "$lock_sum" > "$VENV/.lock-synced"
  rm -f "$VENV/.bytecode-compiled"
fi
# Bytecode compiled once, so processes start fast even where PYTHONDONTWRITEBYTECODE is set
# (the kubernetes client alone is thousands of modules, seconds to compile at every start).
if [ ! -f "$VENV/.bytecode-compiled" ]; then
  log "compiling the packages' bytecode"
  "$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib" >/dev/null || true
  touch "$VENV/.bytecode-compiled"
fi

# Generated Python for the protos, beside them, for plain `python`/`pytest` use (Bazel
# generates its own copy in bazel-bin). Regenerated when any proto changed.
proto_sum=$(find api tools/protoc -name '*.proto' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.protos-generated" 2>/dev/null)" != "$proto_sum" ]; then
  log "generating Python from the protos"
  find api \( -name '*_pb2.py' -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.py' \) -delete
  "$VENV/bin/python" tools/protoc/protoc.py --generate-tree .
  echo "$proto_sum" > "$VENV/.protos-generated"
fi

# mixerclient's Python extension (its C++ core with the nanobind binding), built into the tree
# for plain `python`/`pytest` use (Bazel builds its own in bazel-bin). Rebuilt when any of its
# sources, the word list or the nanobind version changed.
ext="mixerclient/python/_mixerclient$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
ext_sum=$( { find mixerclient -maxdepth 2 \( -name '*.cc' -o -name '*.h' -o -name '*.sh' -o -name 'gen_global_dictionary.py' \) \
  ! -name '*_test.cc' -print0 | sort -z | xargs -0 sha256sum; sha256sum api/mixer/v1/global_dictionary.yaml;
  grep '^nanobind==' requirements.lock; } | sha256sum | cut -d' ' -f1)
if [ ! -f "$ext" ] || [ "$(cat "$VENV/.mixerclient-built" 2>/dev/null)" != "$ext_sum" ]; then
  log "building the mixerclient Python extension"
  mixerclient/python/build_extension.sh "$VENV/bin/python" "$ext"
  echo "$ext_sum" > "$VENV/.mixerclient-built"
fi
# Its type stub, for mypy (make lint), written from the built module by nanobind's stubgen.
stub=mixerclient/python/_mixerclient.pyi
if [ ! -f "$stub" ] || [ "$ext" -nt "$stub" ]; then
  log "writing the mixerclient extension's type stub"
  PYTHONPATH=. "$VENV/bin/python" -m nanobind.stubgen -q -m mixerclient.python._mixerclient -o "$stub"
fi

# The mesh page's front-end packages (cytoscape), pinned by its package-lock.json.
page=tools/meshpage
lock_sum=$(sha256sum "$page/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$page/node_modules" ] || [ "$(cat "$page/node_modules/.lock-synced" 2>/dev/null)" != "$lock_sum" ]; then
  log "installing the mesh page's npm packages"
  (cd "$page" && npm ci --no-audit --no-fund --silent)
  echo "$lock_sum" > "$page/node_modules/.lock-synced"
fi
