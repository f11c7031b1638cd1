#!/usr/bin/env bash
# Installs what building and testing need, only when missing, so repeated runs are fast.
set -euo pipefail

packages=(libssl-dev zlib1g-dev libhiredis-dev redis-server node-ws openssl chromium prometheus testssl.sh shellcheck)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    echo "installing: ${missing[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import websockets, pytest, tlslite' >/dev/null 2>&1; then
    echo "installing: websockets pytest tlslite-ng (pip)"
    python3 -m pip install -q websockets pytest 'tlslite-ng>=0.8,<0.9'
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH: install the Swift 6 toolchain (https://www.swift.org/install/linux/)" >&2
    exit 1
fi
