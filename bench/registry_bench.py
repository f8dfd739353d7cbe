#!/usr/bin/env python3
"""Registry benchmark (issue 3), run by bench/run.sh (`make bench`) after the control plane's.

Measures `wharf server`'s OCI registry under /v2/ and, in the same run and the same way, Debian's
docker-registry 2.8 (the peer; filesystem storage, no auth) on this machine:
  1. blob upload: POST /v2/<repo>/blobs/uploads/, then one monolithic PUT <location>&digest=...
     of a random blob (default 256 MiB) with curl -T (digest verified by the server); each run
     uploads new content (the file's first 8 bytes change); best and median of --runs, MB/s
     from curl's %{speed_upload} (1 MB = 10^6 bytes);
  2. blob download: GET of the last uploaded blob with curl -o /dev/null; best and median of
     --runs (%{speed_download});
  3. manifest GETs with wrk -c 1000 (1000 connections, each with a request always in flight);
     p50/p99 and requests per second;
  4. 1,000 concurrent manifest GETs (bench/manifest_burst.cpp): 1,000 open keep-alive
     connections, then rounds in which one GET is written on every connection at once; each
     request is timed from its own write to its whole response; p50/p99 over all rounds. The
     same client also runs against bench/floor_server.cpp, which answers with fixed bytes and
     does no work: the least any server can reach on this machine.
Before each timed transfer the page cache's dirty data is written back (sync) and the driver
waits for other processes to go quiet. The test file and both servers' data live in one
temporary directory (default under /tmp), removed at the end; servers are stopped by PID.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import boto3
import botocore.config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wharf_bench import (ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, Server,  # noqa: E402
                         busy_cpu_seconds, check_clean, children_cpu_seconds, loadavg, log,
                         lua_string, run_wrk, wait_for_quiet)

REPOSITORY = "bench/blob"
TAG = "v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ("application/vnd.oci.image.manifest.v1+json, "
          "application/vnd.docker.distribution.manifest.v2+json")
DISTURBED_CORES = 0.2

TARGETS = {
    "upload_mbps": 800.0,      # and >= 3x docker-registry
    "upload_ratio": 3.0,
    "manifest_p99_ms": 10.0,   # download: >= docker-registry
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Target:
    """A registry to measure: name, base URL, extra curl/wrk headers, process."""

    def __init__(self, name, url, headers, process):
        self.name, self.url, self.headers, self.process = name, url, headers, process

    def curl(self, *args, check_status=None):
        command = ["curl", "-sS", "--noproxy", "*"]
        for name, value in self.headers.items():
            command += ["-H", "%s: %s" % (name, value)]
        result = subprocess.run(command + list(args), check=True, capture_output=True,
                                text=True)
        return result.stdout

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.process.pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_wharf(args, work):
    server = Server(args.binary, os.path.join(work, "wharf-data"), args.threads,
                    os.path.join(work, "wharf.log")).start()
    ecr = boto3.session.Session().client(
        "ecr", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}))
    ecr.create_repository(repositoryName=REPOSITORY)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return server, Target("Wharf", server.endpoint, {"Authorization": "Basic " + token},
                          server.process)


def start_docker_registry(work):
    root = os.path.join(work, "registry")
    os.makedirs(root)
    host = "127.0.0.1:%d" % free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": os.path.join(root, "data")},
                    "delete": {"enabled": True}},
        "http": {"addr": host, "secret": "bench"},
    }
    config_path = os.path.join(root, "config.yml")
    with open(config_path, "w") as file:
        json.dump(config, file)  # JSON is YAML
    log_file = open(os.path.join(work, "registry.log"), "w")
    process = subprocess.Popen(["docker-registry", "serve", config_path], stdout=log_file,
                               stderr=subprocess.STDOUT)
    process.log_file = log_file
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("docker-registry exited; see %s" % log_file.name)
        try:
            socket.create_connection(("127.0.0.1", int(host.split(":")[1])), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return Target("docker-registry", "http://" + host, {}, process)


def start_floor_server(args):
    """bench/floor_server.cpp: answers each request with fixed bytes and does nothing else."""
    port = free_port()
    binary = os.path.join(os.path.dirname(args.burst_binary), "floor_server")
    process = subprocess.Popen([binary, str(port)])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("floor_server did not start")
            time.sleep(0.02)
    return Target("floor (no work)", "http://127.0.0.1:%d" % port, {}, process)


def stop_process(process):
    """Stops one process we started, by its PID: SIGTERM, then SIGKILL after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_blob(path, size):
    """Writes `size` random bytes to `path`."""
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 4 << 20))
            out.write(chunk)
            remaining -= len(chunk)


def next_blob(path, run):
    """Makes the file a new blob: its first 8 bytes become `run`; returns its digest.

    Every upload then stores new content, as a push of a new layer does (uploading a digest
    already stored would also measure how each registry replaces or skips the old copy)."""
    with open(path, "r+b") as file:
        file.write(run.to_bytes(8, "big"))
        file.seek(0)
        digest = hashlib.sha256()
        for block in iter(lambda: file.read(4 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def with_query(location, key, value):
    return location + ("&" if "?" in location else "?") + "%s=%s" % (
        key, urllib.parse.quote(value, safe=""))


def start_upload(target):
    headers = target.curl("-o", "/dev/null", "-D", "-", "-X", "POST", "-H", "Content-Length: 0",
                          target.url + "/v2/%s/blobs/uploads/" % REPOSITORY)
    status = int(headers.split()[1])
    location = re.search(r"^location:\s*(\S+)", headers, re.IGNORECASE | re.MULTILINE)
    if status != 202 or not location:
        raise RuntimeError("%s: starting an upload gave %d:\n%s" % (target.name, status, headers))
    return urllib.parse.urljoin(target.url + "/", location.group(1))


def upload(target, path, digest, size):
    """One monolithic upload; the PUT is timed by curl. Returns (seconds, bytes/s)."""
    location = with_query(start_upload(target), "digest", digest)
    out = target.curl("-o", "/dev/null", "-D", "-", "-T", path, "-H", "Expect:",
                      "-H", "Content-Type: application/octet-stream",
                      "-w", "\nTIMING %{http_code} %{time_total} %{speed_upload} %{size_upload}",
                      location)
    code, total, speed, sent = re.search(r"TIMING (\d+) (\S+) (\S+) (\d+)", out).groups()
    returned = re.search(r"^docker-content-digest:\s*(\S+)", out, re.IGNORECASE | re.MULTILINE)
    if code != "201" or int(sent) != size or not returned or returned.group(1) != digest:
        raise RuntimeError("%s: upload gave HTTP %s (%s bytes sent):\n%s"
                           % (target.name, code, sent, out))
    return float(total), float(speed)


def download(target, digest, size):
    out = target.curl("-o", "/dev/null", "-w",
                      "%{http_code} %{time_total} %{speed_download} %{size_download}",
                      target.url + "/v2/%s/blobs/%s" % (REPOSITORY, digest))
    code, total, speed, got = out.split()
    if code != "200" or int(got) != size:
        raise RuntimeError("%s: download gave HTTP %s, %s bytes" % (target.name, code, got))
    return float(total), float(speed)


def verify_download(target, digest):
    """Hashes one full download (untimed): what comes back is the blob."""
    command = ["curl", "-sS", "--noproxy", "*", "-o", "-"]
    for name, value in target.headers.items():
        command += ["-H", "%s: %s" % (name, value)]
    process = subprocess.Popen(command + [target.url + "/v2/%s/blobs/%s" % (REPOSITORY, digest)],
                               stdout=subprocess.PIPE)
    hasher = hashlib.sha256()
    for chunk in iter(lambda: process.stdout.read(1 << 20), b""):
        hasher.update(chunk)
    process.wait()
    if "sha256:" + hasher.hexdigest() != digest:
        raise RuntimeError("%s: the downloaded blob has another digest" % target.name)


def upload_small(target, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = with_query(start_upload(target), "digest", digest)
    command = ["-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "Expect:",
               "-H", "Content-Type: application/octet-stream", "--data-binary", "@-", location]
    full = ["curl", "-sS", "--noproxy", "*"]
    for name, value in target.headers.items():
        full += ["-H", "%s: %s" % (name, value)]
    code = subprocess.run(full + command, input=data, check=True, capture_output=True).stdout
    if code.strip() != b"201":
        raise RuntimeError("%s: uploading the config gave HTTP %s" % (target.name, code))
    return digest


def push_manifest(target, work, layer_digest, size):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                         "config": {}}).encode()
    config_digest = upload_small(target, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": size}],
    }).encode()
    path = os.path.join(work, "manifest.json")
    with open(path, "wb") as out:
        out.write(manifest)
    code = target.curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                       "-H", "Content-Type: " + OCI_MANIFEST, "--data-binary", "@" + path,
                       target.url + "/v2/%s/manifests/%s" % (REPOSITORY, TAG))
    if code != "201":
        raise RuntimeError("%s: pushing the manifest gave HTTP %s" % (target.name, code))
    got = target.curl("-H", "Accept: " + ACCEPT,
                      target.url + "/v2/%s/manifests/%s" % (REPOSITORY, TAG))
    if got.encode() != manifest:
        raise RuntimeError("%s: GET manifest returned other bytes" % target.name)
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def timed(args, target, label, action):
    """Runs `action` after a sync and a quiet machine; notes the CPU others used meanwhile."""
    os.sync()
    wait_for_quiet(args, label)
    server_before, children_before = target.cpu_seconds(), children_cpu_seconds()
    busy_before, began = busy_cpu_seconds()[0], time.monotonic()
    seconds, speed = action()
    elapsed = time.monotonic() - began
    server = target.cpu_seconds() - server_before
    other = max(0.0, busy_cpu_seconds()[0] - busy_before - server
                - (children_cpu_seconds() - children_before)) / elapsed
    return {"seconds": seconds, "mbps": speed / 1e6, "server_cpu_s": server, "other": other,
            "disturbed": other > DISTURBED_CORES}


def transfer_series(args, targets, label, action, prepare=None):
    """--runs alternating measurements per target (Wharf, peer, Wharf, ...); `prepare`, if
    given, runs (untimed) before each and its result is passed to `action`."""
    runs = {target.name: [] for target in targets}
    for index in range(args.runs):
        for target in targets:
            prepared = prepare() if prepare else None
            result = timed(args, target, label, lambda: action(target, prepared))
            runs[target.name].append(result)
            log("  %-16s %s %d: %8.1f MB/s  %.3f s  (server CPU %.2f s; other processes %.2f "
                "cores%s)" % (target.name, label, index + 1, result["mbps"], result["seconds"],
                              result["server_cpu_s"], result["other"],
                              " DISTURBED" if result["disturbed"] else ""))
    return runs


def write_manifest_lua(path, target):
    lines = ['wrk.method = "GET"',
             "wrk.path = %s" % lua_string("/v2/%s/manifests/%s" % (REPOSITORY, TAG)),
             "wrk.headers[\"Accept\"] = %s" % lua_string(ACCEPT)]
    for name, value in target.headers.items():
        lines.append("wrk.headers[%s] = %s" % (lua_string(name), lua_string(value)))
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def manifest_load(args, target, script, strict):
    """wrk against one target (see least_disturbed); with `strict`, errors and timeouts fail the
    run (Wharf), else they are reported (the peer: wrk counts a response slower than 2 s as a
    timeout)."""
    warmup = run_wrk(target.url, script, args.wrk_threads, args.connections, args.warmup,
                     latency=False)
    if strict and warmup["non2xx"]:
        check_clean(warmup, target.name + " manifest warm-up")
    if warmup["socket_errors"]:
        # 1,000 connections opened at once: the kernel drops some SYNs and the client resends
        # them after 1 s, then 3 s, past wrk's 2 s timeout. The measurement after is strict.
        log("  %-16s warm-up: %d socket errors (connection set-up)"
            % (target.name, warmup["socket_errors"]))
    def measure():
        server_before, wrk_before = target.cpu_seconds(), children_cpu_seconds()
        (busy_before, irq_before), began = busy_cpu_seconds(), time.monotonic()
        result = run_wrk(target.url, script, args.wrk_threads, args.connections, args.duration)
        elapsed = time.monotonic() - began
        busy_after, irq_after = busy_cpu_seconds()
        result["server_cpu"] = (target.cpu_seconds() - server_before) / elapsed
        result["wrk_cpu"] = (children_cpu_seconds() - wrk_before) / elapsed
        result["irq_cpu"] = (irq_after - irq_before) / elapsed
        result["other_cpu"] = max(0.0, (busy_after - busy_before) / elapsed
                                  - result["server_cpu"] - result["wrk_cpu"])
        if strict:
            check_clean(result, target.name + " manifest GETs")
        log("  %-16s manifest GET: %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d requests; "
            "%d non-2xx, %d socket errors; CPU cores: server %.2f, wrk %.2f, softirq %.2f, "
            "other processes %.2f%s)"
            % (target.name, result["rps"], result["p50"], result["p99"], result["requests"],
               result["non2xx"], result["socket_errors"],
               result["server_cpu"], result["wrk_cpu"], result["irq_cpu"], result["other_cpu"],
               disturbed_mark(result)))
        return result

    return least_disturbed(args, "manifest GETs", measure)


def disturbed_mark(result):
    return " DISTURBED" if result["other_cpu"] > DISTURBED_CORES else ""


def least_disturbed(args, what, measure):
    """`measure` after waiting for a quiet machine, until an attempt no other process disturbed
    (at most 1 + --retries): that attempt, else the least disturbed one."""
    best = None
    for _ in range(1 + args.retries):
        wait_for_quiet(args, what)
        result = measure()
        if best is None or result["other_cpu"] < best["other_cpu"]:
            best = result
        if result["other_cpu"] <= DISTURBED_CORES:
            break
    return best


def manifest_burst(args, target):
    """bench/manifest_burst.cpp against one target (see least_disturbed)."""
    url = urllib.parse.urlsplit(target.url)
    command = [args.burst_binary, url.hostname, str(url.port),
               "/v2/%s/manifests/%s" % (REPOSITORY, TAG),
               "--connections", str(args.connections), "--rounds", str(args.burst_rounds),
               "--header", "Accept: " + ACCEPT]
    for name, value in target.headers.items():
        command += ["--header", "%s: %s" % (name, value)]
    def measure():
        server_before, client_before = target.cpu_seconds(), children_cpu_seconds()
        busy_before, began = busy_cpu_seconds()[0], time.monotonic()
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        elapsed = time.monotonic() - began
        result = json.loads(output)
        server_cpu = target.cpu_seconds() - server_before
        client_cpu = children_cpu_seconds() - client_before
        result["other_cpu"] = max(0.0, (busy_cpu_seconds()[0] - busy_before - server_cpu
                                        - client_cpu) / elapsed)
        log("  %-16s %d x %d GETs: p50 %6.2f ms  p90 %6.2f ms  p99 %6.2f ms  max %6.2f ms  "
            "(per-round p99: median %.2f, worst %.2f ms; all answered by %.2f ms after a "
            "burst's first write, p99; %d errors; other processes %.2f cores%s)"
            % (target.name, result["rounds"], result["connections"], result["p50_ms"],
               result["p90_ms"], result["p99_ms"], result["max_ms"],
               result["round_p99_median_ms"], result["round_p99_worst_ms"],
               result["since_burst_p99_ms"], result["errors"], result["other_cpu"],
               disturbed_mark(result)))
        return result

    return least_disturbed(args, "manifest bursts", measure)


def raise_fd_limit(wanted):
    """Raises the soft open-file limit towards `wanted`, never past the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--threads", type=int, default=2, help="wharf server --threads")
    parser.add_argument("--size-mib", type=int, default=256, help="blob size")
    parser.add_argument("--runs", type=int, default=5, help="uploads and downloads per registry")
    parser.add_argument("--connections", type=int, default=1000, help="wrk -c for manifest GETs")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up")
    parser.add_argument("--work-dir", default=None,
                        help="parent of the temporary dir (default $TMPDIR or /tmp)")
    parser.add_argument("--quiet-wait", type=int, default=60)
    parser.add_argument("--retries", type=int, default=2,
                        help="repeats of a wrk measurement other processes disturbed")
    parser.add_argument("--burst-binary", default=None,
                        help="bench/manifest_burst.cpp built (default: beside --binary)")
    parser.add_argument("--burst-rounds", type=int, default=20)
    parser.add_argument("--no-peer", action="store_true", help="skip docker-registry")
    parser.add_argument("--keep", action="store_true", help="keep the temporary dir")
    args = parser.parse_args()
    args.binary = os.path.abspath(args.binary)
    if args.burst_binary is None:
        args.burst_binary = os.path.join(os.path.dirname(args.binary), "bench", "manifest_burst")
    # SIGTERM (and SIGINT, which a background job ignores) unwind through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    soft, hard = raise_fd_limit(args.connections * 2 + 1024)
    size = args.size_mib << 20
    work = tempfile.mkdtemp(prefix="wharf-registry-bench-", dir=args.work_dir)
    fs_type = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True,
                             text=True).stdout.strip()
    log("\nRegistry benchmark (issue 3): %s" % args.binary)
    log("  temp dir %s (%s; test file and both registries' data), %d CPUs, load average %s, "
        "open files %s/%s" % (work, fs_type, os.cpu_count(), loadavg(), soft, hard))
    peer = not args.no_peer and shutil.which("docker-registry") is not None
    if not args.no_peer and not peer:
        log("  docker-registry is not installed: measuring Wharf alone")
    servers, targets = [], []
    results = {}
    try:
        blob = os.path.join(work, "blob.bin")
        make_blob(blob, size)
        log("  test blob: %d MiB of random bytes in %s; each upload changes its first 8 bytes"
            % (args.size_mib, blob))
        wharf, wharf_target = start_wharf(args, work)
        servers.append(wharf)
        targets.append(wharf_target)
        if peer:
            targets.append(start_docker_registry(work))
        for target in targets:
            log("  %-16s %s" % (target.name, target.url))

        log("\n[1] Blob upload: POST .../blobs/uploads/ + monolithic PUT ?digest= (curl -T), "
            "%d MiB, %d runs each" % (args.size_mib, args.runs))
        uploaded = {}
        counter = iter(range(1, 1 << 30))

        def new_blob():
            return next_blob(blob, next(counter))

        def upload_new(target, digest):
            uploaded[target.name] = digest
            return upload(target, blob, digest, size)

        results["upload"] = transfer_series(args, targets, "upload", upload_new, new_blob)

        for target in targets:
            verify_download(target, uploaded[target.name])
            push_manifest(target, work, uploaded[target.name], size)
        log("\n[2] Blob download: GET of the last uploaded blob (curl -o /dev/null), %d runs each; "
            "content verified once" % args.runs)
        results["download"] = transfer_series(
            args, targets, "download", lambda t, _: download(t, uploaded[t.name], size))

        log("\n[3] Manifest GETs: wrk -t %d -c %d -d %ds --latency (after %d s warm-up)"
            % (args.wrk_threads, args.connections, args.duration, args.warmup))
        results["manifest"] = {}
        for target in targets:
            script = os.path.join(work, "manifest-%d.lua" % len(results["manifest"]))
            write_manifest_lua(script, target)
            results["manifest"][target.name] = manifest_load(args, target, script,
                                                             strict=target is wharf_target)

        log("\n[4] %d concurrent manifest GETs: %s, %d rounds (after one untimed round)"
            % (args.connections, args.burst_binary, args.burst_rounds))
        results["burst"] = {}
        floor = start_floor_server(args)
        try:
            for target in targets + [floor]:
                results["burst"][target.name] = manifest_burst(args, target)
        finally:
            stop_process(floor.process)
    finally:
        for target in targets[1:]:
            stop_process(target.process)
            target.process.log_file.close()
        for server in servers:
            server.stop()
        if args.keep:
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return summarise(args, results)


def summarise(args, results):
    log("\nRegistry summary (MB/s = 10^6 bytes/s; best / median of %d)" % args.runs)
    upload, download, manifest = results["upload"], results["download"], results["manifest"]
    rows = []

    def speeds(runs):
        values = [run["mbps"] for run in runs]
        return max(values), statistics.median(values)

    w_best, w_median = speeds(upload["Wharf"])
    peer = "docker-registry" in upload
    rows.append(("Upload, Wharf", "%.0f / %.0f MB/s" % (w_best, w_median), ">= 800 MB/s",
                 "MET" if w_median >= TARGETS["upload_mbps"] else "MISSED"))
    if peer:
        p_best, p_median = speeds(upload["docker-registry"])
        rows.append(("Upload, docker-registry", "%.0f / %.0f MB/s" % (p_best, p_median), "", ""))
        ratio = w_median / p_median
        rows.append(("  Wharf / docker-registry (medians)", "%.2fx" % ratio, ">= 3x",
                     "MET" if ratio >= TARGETS["upload_ratio"] else "MISSED"))
    w_down = speeds(download["Wharf"])
    rows.append(("Download, Wharf", "%.0f / %.0f MB/s" % w_down, ">= peer", ""))
    if peer:
        p_down = speeds(download["docker-registry"])
        rows.append(("Download, docker-registry", "%.0f / %.0f MB/s" % p_down, "", ""))
        rows.append(("  Wharf / docker-registry (medians)", "%.2fx" % (w_down[1] / p_down[1]),
                     ">= 1x", "MET" if w_down[1] >= p_down[1] else "MISSED"))
    for name, result in manifest.items():
        label = "Manifest GET -c %d, %s" % (args.connections, name)
        if result["other_cpu"] > DISTURBED_CORES:
            label += " (disturbed)"
        is_wharf = name == "Wharf"
        rows.append((label, "%.0f/s" % result["rps"], "p99 <= 10 ms" if is_wharf else "", ""))
        if result["socket_errors"] or result["non2xx"]:
            rows.append(("  socket errors (wrk: > 2 s is a timeout) / non-2xx",
                         "%d / %d" % (result["socket_errors"], result["non2xx"]), "", ""))
        rows.append(("  p50 / p99, " + name, "%.2f / %.2f ms" % (result["p50"], result["p99"]),
                     "",
                     ("MET" if result["p99"] <= TARGETS["manifest_p99_ms"] else "MISSED")
                     if is_wharf else ""))
    for name, result in results["burst"].items():
        label = "%d concurrent manifest GETs, %s" % (args.connections, name)
        if result["other_cpu"] > DISTURBED_CORES:
            label += " (disturbed)"
        is_wharf = name == "Wharf"
        rows.append((label, "p50 %.2f / p99 %.2f ms" % (result["p50_ms"], result["p99_ms"]),
                     "p99 <= 10 ms" if is_wharf else "",
                     ("MET" if result["p99_ms"] <= TARGETS["manifest_p99_ms"] else "MISSED")
                     if is_wharf else ""))
    for row in rows:
        log("  %-44s %20s  %-12s %s" % row)
    missed = [row[0].strip() for row in rows if row[3] == "MISSED"]
    log("\nRegistry missed: %s" % "; ".join(missed) if missed else "\nRegistry: all targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
