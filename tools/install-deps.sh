#!/bin/sh
# Installs the Debian packages concur needs to build and test, if any are
# missing. Runs apt-get only as root; otherwise says what to install.
set -eu
pkgs="build-essential cmake pkg-config libcmocka-dev python3 libopenmpi-dev openmpi-bin"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "concur: missing Debian packages:$missing" >&2
    echo "concur: run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "concur: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
