# Sourced (not run) by the scripts that measure beside ../shared/bench's wsload (bench-tool.sh, bench-scaling.sh):
# re-runs the calling script in a private network namespace with loopback up, as ../shared/bench/compare.sh does,
# and builds wsload into $WSLOAD_BUILD (default /tmp/wsload-build) when it is missing or older than its source.
# Sets root (the repository), shared (../shared unless $SHARED) and build (where wsload is).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${IN_NETNS:-}" ]; then exec env IN_NETNS=1 unshare -n "$0" "$@"; fi
ip link set lo up
shared=${SHARED:-$root/../shared}
build=${WSLOAD_BUILD:-${TMPDIR:-/tmp}/wsload-build}
mkdir -p "$build"
if [ ! -x "$build/wsload" ] || [ "$shared/bench/wsload.c" -nt "$build/wsload" ]; then
    cc -O2 -pthread -o "$build/wsload" "$shared/bench/wsload.c" -lssl -lcrypto -lz
fi
