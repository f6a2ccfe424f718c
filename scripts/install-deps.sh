#!/bin/sh
# Installs everything resflow needs from Debian 12 packages. Used by the README and .ci/run.
# Usage: scripts/install-deps.sh [--with-torch] [--with-mpi]
#   --with-torch: for fixtures and benchmarks; --with-mpi: OpenMPI, for the data-parallel build
#   (make MPI=1, docs/distributed.md)
set -e
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PKGS="build-essential pkg-config libopenblas-openmp-dev libyaml-dev libjansson-dev libxxhash-dev
      libzstd-dev zlib1g-dev libcmocka-dev libxml2-utils libmicrohttpd-dev curl
      python3-numpy python3-pandas python3-pytest
      clang libclang-rt-14-dev libomp-dev"  # clang + libFuzzer: make fuzz (docs/reliability.md)
for a in "$@"; do
    case "$a" in
    --with-torch) PKGS="$PKGS python3-torch python3-numpy python3-pandas python3-faiss" ;;
    --with-mpi) PKGS="$PKGS libopenmpi-dev openmpi-bin" ;;
    *) echo "install-deps.sh: unknown option $a" >&2; exit 1 ;;
    esac
done
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
