# Shared by .ci/test and .ci/demo: make sure the Debian packages are there,
# then configure and build. Source it from the repo root.

# libcaf-dev brings libcaf_openssl but neither OpenSSL's headers (libssl-dev,
# for the node's remote control and connmgr-ctl) nor the openssl command the
# control tests make their certificates with.
packages=(cmake g++ ninja-build libcaf-dev libfmt-dev doctest-dev microsocks prometheus-cpp-dev curl iproute2 nftables libssl-dev openssl libsqlite3-dev)

# Where .ci/caf-tsan installs CAF built with ThreadSanitizer: outside the
# clone, so fresh checkouts on the same machine reuse it.
caf_tsan_prefix="${CONNMGR_CAF_TSAN_PREFIX:-/var/cache/connmgr/caf-0.17.6-tsan}"

# ensure_packages [package...]: installs the missing ones of the given Debian
# packages (default: $packages).
ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "warning: dpkg-query not found; not checking for Debian packages" >&2
    return 0
  fi
  local wanted=("$@")
  ((${#wanted[@]} > 0)) || wanted=("${packages[@]}")
  local missing=() pkg status
  for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "error: missing Debian packages: ${missing[*]}" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
}

# configure_and_build [target...]: configures $build_dir with Ninja and builds
# the given targets (all when none).
configure_and_build() {
  build_dir="${CONNMGR_BUILD_DIR:-build}"
  # A tree configured with another generator cannot be reused as is: drop its
  # cache (only the cache, never the whole directory) so Ninja can take over.
  local cache="$build_dir/CMakeCache.txt"
  if [[ -f "$cache" ]] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$cache"; then
    echo "==> $build_dir was configured with another generator; resetting its cache"
    rm -rf -- "$cache" "$build_dir/CMakeFiles"
  fi
  local extra_cmake_args=()
  if [[ -n "${CONNMGR_CMAKE_ARGS:-}" ]]; then
    read -r -a extra_cmake_args <<<"$CONNMGR_CMAKE_ARGS"
  fi
  # Line tables (-g1) are all that stack traces and sanitizer reports need,
  # and compile about a third faster than full debug information (-g).
  # CONNMGR_OPT_LEVEL chooses the optimisation (default -O2).
  local config_flags="${CONNMGR_OPT_LEVEL:--O2} -g1 -DNDEBUG"
  echo "==> configuring $build_dir"
  cmake -S . -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$config_flags" \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$config_flags" \
    "${extra_cmake_args[@]}" || return 1 # also where `set -e` is off
  echo "==> building"
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
}
