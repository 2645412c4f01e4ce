#!/usr/bin/env bash
# Installs what keyfleet's build and tests need and this machine lacks. Safe to run again: it
# installs nothing that is already present.
#
#   softhsm2     the SoftHSM2 PKCS#11 module and softhsm2-util, for tests and the local fleet
#   opensc       pkcs11-tool, used by tests and documented for operators
#   cargo-nextest  the test runner: it runs each test in its own process, which SoftHSM needs
set -euo pipefail

packages=(softhsm2 opensc)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest from crates.io" >&2
  cargo install --locked cargo-nextest
fi
