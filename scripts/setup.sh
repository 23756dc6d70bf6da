#!/usr/bin/env bash
# Installs the Debian packages qwenc needs to build and test. Safe to run twice.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libjansson-dev libutf8proc-dev python3)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
