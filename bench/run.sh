#!/usr/bin/env bash
# Wharf benchmarks (make bench): bench/run.sh BUILD_DIR [wharf_bench.py options]
# Runs BUILD_DIR/wharf against wrk replaying SigV4-signed requests and prints a summary, then the
# registry benchmark (bench/registry_bench.py: blob upload and download with curl, manifest GETs
# with wrk -c 1000, each against Wharf and Debian's docker-registry 2.8 when it is installed).
# Knobs (environment): WHARF_BENCH_THREADS ("1 2": server --threads values to try),
# WHARF_BENCH_DURATION (10 s), WHARF_BENCH_REVISIONS (100000), WHARF_BENCH_DIR (temp parent),
# WHARF_BENCH_REGISTRY (1; 0 skips the registry benchmark), WHARF_BENCH_BLOB_MIB (256),
# WHARF_BENCH_TASKS (1; 0 skips the task benchmark, which needs root).
# Nothing is written outside temporary data dirs, which are removed at the end.
set -euo pipefail

build=${1:?usage: bench/run.sh BUILD_DIR [options]}
shift
binary="$build/wharf"
here=$(cd "$(dirname "$0")" && pwd)

[[ -x "$binary" ]] || { echo "bench: $binary not found; build it first (make build)" >&2; exit 1; }
for tool in wrk sqlite3 python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps)" >&2; exit 1; }
done
python3 -c 'import botocore, boto3' 2>/dev/null || { echo "bench: python3 lacks boto3/botocore" >&2; exit 1; }

options=(--binary "$binary"
         --server-threads "${WHARF_BENCH_THREADS:-1 2}"
         --duration "${WHARF_BENCH_DURATION:-10}"
         --revisions "${WHARF_BENCH_REVISIONS:-100000}")
[[ -n "${WHARF_BENCH_DIR:-}" ]] && options+=(--work-dir "$WHARF_BENCH_DIR")

echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $(date -u)"
python3 "$here/wharf_bench.py" "${options[@]}" "$@"

if [[ "${WHARF_BENCH_REGISTRY:-1}" != 0 ]]; then
  registry_options=(--binary "$binary" --duration "${WHARF_BENCH_DURATION:-10}"
                    --size-mib "${WHARF_BENCH_BLOB_MIB:-256}")
  [[ -n "${WHARF_BENCH_DIR:-}" ]] && registry_options+=(--work-dir "$WHARF_BENCH_DIR")
  python3 "$here/registry_bench.py" "${registry_options[@]}"
fi

# Tasks as real containers (issue 4): RunTask -> RUNNING latency, 200 at once, agent memory; with
# `runc run` and `podman run` as references (podman is installed for the benchmark when missing).
if [[ "${WHARF_BENCH_TASKS:-1}" != 0 ]]; then
  if [[ $(id -u) -eq 0 ]] && ! command -v podman >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman \
      >/dev/null 2>&1 || echo "bench: podman could not be installed; it is left out" >&2
  fi
  task_options=(--binary "$binary")
  [[ -n "${WHARF_BENCH_DIR:-}" ]] && task_options+=(--work-dir "$WHARF_BENCH_DIR")
  python3 "$here/task_bench.py" "${task_options[@]}"
fi

# Placement engine alone (issue 4): Google Benchmark, one thread.
if [[ -x "$build/bench/placement_bench" ]]; then
  echo
  echo "[placement] $build/bench/placement_bench"
  "$build/bench/placement_bench"
fi
