#!/usr/bin/env bash
# Installs the Debian packages Wharf needs to build, test and run; silent when all are present.
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libarchive-dev libcurl4-openssl-dev libzstd-dev zlib1g-dev
  # tests and benchmarks
  wrk sqlite3 curl
  skopeo umoci docker-registry busybox-static
  # container runtimes (the agent uses crun where it works, else runc)
  runc crun
  # a static init for initProcessEnabled
  tini
  # bridge networking: nft (iproute2 is part of every Debian system)
  nftables iproute2
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
