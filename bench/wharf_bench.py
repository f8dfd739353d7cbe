#!/usr/bin/env python3
"""Wharf benchmark driver, run by bench/run.sh (`make bench`).

Measures, against a real `wharf server` on this machine, over keep-alive connections with wrk
replaying one request pre-signed with SigV4 (botocore):
  1. DescribeClusters throughput and p50/p99 latency (after creating a cluster);
  2. RegisterTaskDefinition (durable: each call is fsync'd before it is acknowledged);
  3. start-up time and resident memory with N stored task definition revisions (default 100,000).
Prints a summary; writes nothing outside its temporary data directory, which it removes.
"""

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY_ID = "AKIAWHARFBENCH000001"
SECRET_ACCESS_KEY = "wharf-bench-secret-access-key-0000000000"
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CLUSTER = "bench"

# A typical small service: one container with a port, environment, logging and health check.
TASK_DEFINITION = {
    "family": "bench-web",
    "networkMode": "bridge",
    "containerDefinitions": [{
        "name": "web",
        "image": "public.ecr.aws/nginx/nginx:1.25",
        "cpu": 256,
        "memory": 512,
        "essential": True,
        "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
        "environment": [{"name": "MODE", "value": "production"},
                        {"name": "LOG_LEVEL", "value": "info"}],
        "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
        "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                        "interval": 30, "timeout": 5, "retries": 3},
    }],
}

# A measurement during which other processes used more CPU than this is reported as disturbed.
DISTURBED_CORES = 0.2

TARGETS = {  # the goals the summary checks against
    "describe_rps": 20000.0,
    "describe_p99_ms": 5.0,
    "register_rps": 2000.0,
    "startup_s": 1.0,
}


def log(message):
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Signing


def signed_headers(endpoint, operation, body):
    """Headers (Host included) of a POST / to `endpoint` signed now; valid for 15 minutes."""
    request = AWSRequest(method="POST", url=endpoint + "/", data=body.encode(), headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": TARGET_PREFIX + operation,
    })
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "ecs", REGION).add_auth(request)
    headers = dict(request.headers.items())
    # botocore signs the host of the URL without adding the header; wrk and http.client must
    # send exactly that value.
    headers["Host"] = endpoint.split("://", 1)[1]
    return headers


def lua_string(text):
    """A double-quoted Lua string literal; bytes outside printable ASCII become \\ddd escapes."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append("\\%03d" % byte)
    return '"' + "".join(out) + '"'


def write_lua(path, endpoint, operation, body, budget=None):
    """A wrk script replaying one signed request; static, so wrk serialises it only once.

    With `budget`, each wrk thread stops after that many responses (requests already in flight
    still complete, so up to one more per connection lands).
    """
    lines = ['wrk.method = "POST"', 'wrk.path = "/"', "wrk.body = " + lua_string(body)]
    for name, value in signed_headers(endpoint, operation, body).items():
        lines.append("wrk.headers[%s] = %s" % (lua_string(name), lua_string(value)))
    if budget is not None:
        lines += ["local budget, answered = %d, 0" % budget,
                  "function response(status, headers, body)",
                  "  answered = answered + 1",
                  "  if answered >= budget then wrk.thread:stop() end",
                  "end"]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def call(endpoint, operation, payload):
    body = json.dumps(payload)
    host_port = endpoint.split("://", 1)[1]
    connection = http.client.HTTPConnection(host_port, timeout=30)
    try:
        connection.request("POST", "/", body=body.encode(),
                           headers=signed_headers(endpoint, operation, body))
        response = connection.getresponse()
        data = response.read().decode()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError("%s returned %d: %s" % (operation, response.status, data))
    return json.loads(data)


# ---------------------------------------------------------------------------------------------
# The server


class Server:
    """One `wharf server` process on a free port; start-up is timed to the listening line."""

    def __init__(self, binary, data_dir, threads, log_path):
        self.binary, self.data_dir, self.threads, self.log_path = binary, data_dir, threads, log_path
        self.process = None
        self.endpoint = None
        self.startup_s = None

    def start(self):
        command = [self.binary, "server", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
                   "--admin-access-key-id", ACCESS_KEY_ID,
                   "--admin-secret-access-key", SECRET_ACCESS_KEY,
                   "--threads", str(self.threads)]
        self.log_file = open(self.log_path, "a")
        begin = time.monotonic()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log_file,
                                        text=True)
        for line in self.process.stdout:
            match = re.search(r"Wharf is listening on (http://\S+)", line)
            if match:
                self.startup_s = time.monotonic() - begin
                self.endpoint = match.group(1)
                break
        else:
            self.process.wait()
            raise RuntimeError("wharf exited (%d) before listening; see %s"
                               % (self.process.returncode, self.log_path))
        return self

    def status(self, field):
        """A /proc/PID/status field in KiB (VmRSS, VmHWM)."""
        with open("/proc/%d/status" % self.process.pid) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.process.pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def loaded_line(self):
        """(ms, revisions) from the latest "loaded state in N ms (R task definition revisions)"."""
        with open(self.log_path) as logged:
            found = re.findall(r"loaded state in (\d+) ms \((\d+) task definition revisions\)",
                               logged.read())
        return (int(found[-1][0]), int(found[-1][1])) if found else (None, None)

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.log_file.close()
        self.process = None


# ---------------------------------------------------------------------------------------------
# wrk


def to_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}[unit]


def run_wrk(endpoint, script, threads, connections, duration, latency=True):
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % duration,
               "-s", script] + (["--latency"] if latency else []) + [endpoint + "/"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = {"command": " ".join(command), "output": output}
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    result["requests"] = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    result["socket_errors"] = sum(int(g) for g in errors.groups()) if errors else 0
    for percentile in ("50", "75", "90", "99"):
        match = re.search(r"^\s+%s%%\s+(\S+)" % percentile, output, re.MULTILINE)
        if match:
            result["p" + percentile] = to_ms(match.group(1))
    return result


def check_clean(result, what):
    if result["non2xx"] or result["socket_errors"]:
        raise RuntimeError("%s: %d non-2xx responses, %d socket errors\n%s"
                           % (what, result["non2xx"], result["socket_errors"], result["output"]))


# ---------------------------------------------------------------------------------------------
# The suite


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def busy_cpu_seconds():
    """(process CPU time of the whole machine, irq + softirq time), in seconds.

    Loopback TCP is mostly processed in softirqs, which the kernel does not charge to the
    sending or receiving process, so it is reported apart from the processes' own time.
    """
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return sum(fields[:3]) / tick, sum(fields[5:7]) / tick


def wait_for_quiet(args, label):
    """Waits (up to --quiet-wait seconds) until other processes use under 0.1 cores for 2 s.

    The machine may be shared (builds, tests); their CPU use would skew the figures.
    """
    deadline = time.monotonic() + args.quiet_wait
    while True:
        before = busy_cpu_seconds()[0] - children_cpu_seconds()
        time.sleep(2)
        other = (busy_cpu_seconds()[0] - children_cpu_seconds() - before) / 2
        if other < 0.1 or time.monotonic() >= deadline:
            if other >= 0.1:
                log("  (%s: other processes still use %.2f cores; measuring anyway)"
                    % (label, other))
            return


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def count_revisions(data_dir):
    db = os.path.join(data_dir, "wharf.db")
    output = subprocess.run(
        ["sqlite3", "-readonly", db,
         "SELECT count(*) FROM records WHERE kind = 'ecs.task_definition';"],
        check=True, capture_output=True, text=True).stdout
    return int(output.strip())


def throughput(args, work, threads, results):
    """Benchmarks 1 and 2 against a server with `threads` listener threads."""
    data_dir = os.path.join(work, "data")
    server = Server(args.binary, data_dir, threads, os.path.join(work, "server.log")).start()
    try:
        call(server.endpoint, "CreateCluster", {"clusterName": CLUSTER})
        describe = call(server.endpoint, "DescribeClusters", {"clusters": [CLUSTER]})
        assert describe["clusters"][0]["clusterName"] == CLUSTER, describe

        describe_lua = os.path.join(work, "describe-clusters.lua")
        write_lua(describe_lua, server.endpoint, "DescribeClusters",
                  json.dumps({"clusters": [CLUSTER]}))
        register_lua = os.path.join(work, "register-task-definition.lua")
        write_lua(register_lua, server.endpoint, "RegisterTaskDefinition",
                  json.dumps(TASK_DEFINITION))

        for name, script, connections in (
                ("DescribeClusters", describe_lua, args.describe_connections),
                ("RegisterTaskDefinition", register_lua, args.register_connections)):
            check_clean(run_wrk(server.endpoint, script, args.wrk_threads, connections,
                                args.warmup, latency=False), name + " warm-up")
            result = measure(args, server, script, connections, name, threads)
            results[(name, threads)] = result
    finally:
        server.stop()


def measure(args, server, script, connections, name, threads):
    """One wrk measurement; repeated (up to --retries) while other processes disturb it."""
    best = None
    for attempt in range(1 + args.retries):
        wait_for_quiet(args, name)
        server_before, wrk_before = server.cpu_seconds(), children_cpu_seconds()
        (busy_before, irq_before), began = busy_cpu_seconds(), time.monotonic()
        result = run_wrk(server.endpoint, script, args.wrk_threads, connections,
                         args.duration)
        elapsed = time.monotonic() - began
        busy_after, irq_after = busy_cpu_seconds()
        result["server_cpu"] = (server.cpu_seconds() - server_before) / elapsed
        result["wrk_cpu"] = (children_cpu_seconds() - wrk_before) / elapsed
        result["irq_cpu"] = (irq_after - irq_before) / elapsed
        # Whatever else ran meanwhile (other jobs on a shared machine) skews the figures.
        result["other_cpu"] = max(0.0, (busy_after - busy_before) / elapsed
                                  - result["server_cpu"] - result["wrk_cpu"])
        check_clean(result, name)
        disturbed = result["other_cpu"] > DISTURBED_CORES
        log("  %-23s server --threads %d: %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  "
            "(%d requests; CPU cores: server %.2f, wrk %.2f, softirq %.2f, "
            "other processes %.2f%s)"
            % (name, threads, result["rps"], result["p50"], result["p99"],
               result["requests"], result["server_cpu"], result["wrk_cpu"],
               result["irq_cpu"], result["other_cpu"], " DISTURBED" if disturbed else ""))
        if best is None or result["other_cpu"] < best["other_cpu"]:
            best = result
        if not disturbed:
            break
    return best


def fill(args, data_dir, log_path):
    """Registers task definitions through the API (wrk replay) until `args.revisions` exist."""
    server = Server(args.binary, data_dir, args.fill_threads, log_path).start()
    try:
        script = os.path.join(os.path.dirname(data_dir), "fill.lua")
        begin = time.monotonic()
        count = count_revisions(data_dir) if os.path.exists(os.path.join(data_dir, "wharf.db")) else 0
        while count < args.revisions:
            # Each thread stops after its share of what is missing. wrk itself still sleeps out
            # its duration, so it is interrupted once the registrations stop growing. A round
            # lasts at most 10 minutes because a signature lives 15; the next is signed afresh.
            remaining = args.revisions - count
            write_lua(script, server.endpoint, "RegisterTaskDefinition",
                      json.dumps(TASK_DEFINITION), budget=-(-remaining // args.wrk_threads))
            wrk = subprocess.Popen(
                ["wrk", "-t", str(args.wrk_threads), "-c",
                 str(min(args.register_connections, remaining)), "-d", "600s", "-s", script,
                 server.endpoint + "/"], stdout=subprocess.PIPE, text=True)
            try:
                last = count
                while wrk.poll() is None:
                    time.sleep(1)
                    now = count_revisions(data_dir)
                    if now == last and now > count:
                        wrk.send_signal(signal.SIGINT)
                    last = now
                output = wrk.communicate()[0]
            finally:
                if wrk.poll() is None:
                    wrk.kill()
                    wrk.wait()
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
            if wrk.returncode != 0 or non2xx:
                raise RuntimeError("fill failed:\n" + output)
            previous, count = count, count_revisions(data_dir)
            log("  filling: %d revisions stored" % count)
            if count == previous:
                raise RuntimeError("fill made no progress:\n" + output)
        log("  filled in %.0f s" % (time.monotonic() - begin))
    finally:
        server.stop()
    return count


def startup(args, data_dir, log_path):
    """Times fresh starts over the filled data dir; returns per-start figures."""
    starts = []
    for attempt in range(args.starts):
        wait_for_quiet(args, "start-up")
        busy_before = busy_cpu_seconds()[0]
        server = Server(args.binary, data_dir, 2, log_path).start()
        try:
            server_cpu = server.cpu_seconds()
            other = busy_cpu_seconds()[0] - busy_before - server_cpu
            time.sleep(0.2)  # let the listener settle before sampling memory
            loaded_ms, revisions = server.loaded_line()
            starts.append({"startup_s": server.startup_s, "loaded_ms": loaded_ms,
                           "other_cpu_s": max(0.0, other),
                           "revisions": revisions, "rss_kib": server.status("VmRSS"),
                           "hwm_kib": server.status("VmHWM"),
                           "cpu_s": server_cpu,
                           "disturbed": other > DISTURBED_CORES * server.startup_s})
            # Everything came back: one family, so the newest revision number is the count.
            if attempt == 0:
                listed = call(server.endpoint, "ListTaskDefinitions",
                              {"familyPrefix": TASK_DEFINITION["family"], "sort": "DESC",
                               "maxResults": 1})
                newest = listed["taskDefinitionArns"][0]
                if not newest.endswith(":%d" % revisions):
                    raise RuntimeError("after restart the newest revision is %s, expected :%d"
                                       % (newest, revisions))
        finally:
            server.stop()
        log("  start %d: listening after %.3f s (state loaded in %s ms, %s revisions), "
            "VmRSS %.1f MiB, VmHWM %.1f MiB; CPU s: server %.2f, other processes %.2f%s"
            % (attempt + 1, starts[-1]["startup_s"], loaded_ms, revisions,
               starts[-1]["rss_kib"] / 1024, starts[-1]["hwm_kib"] / 1024, starts[-1]["cpu_s"],
               starts[-1]["other_cpu_s"],
               " DISTURBED" if starts[-1]["disturbed"] else ""))
    return starts


def empty_baseline(args, work):
    """Start-up time and memory over an empty data dir (its second start: the first creates it)."""
    data_dir = os.path.join(work, "empty")
    for attempt in range(2):
        server = Server(args.binary, data_dir, 2, os.path.join(work, "empty.log")).start()
        try:
            time.sleep(0.2)
            baseline = {"startup_s": server.startup_s, "rss_kib": server.status("VmRSS")}
        finally:
            server.stop()
    return baseline


def verdict(value, target, higher_is_better):
    met = value >= target if higher_is_better else value <= target
    return "MET" if met else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--server-threads", default="1 2",
                        help="listener thread counts to benchmark, space separated")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--describe-connections", type=int, default=32)
    parser.add_argument("--register-connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument("--revisions", type=int, default=100000)
    parser.add_argument("--fill-threads", type=int, default=2)
    parser.add_argument("--starts", type=int, default=3, help="timed fresh starts")
    parser.add_argument("--work-dir", default=None,
                        help="parent of the temporary data dir (default $TMPDIR or /tmp)")
    parser.add_argument("--quiet-wait", type=int, default=120,
                        help="seconds to wait, before each measurement, for other processes to "
                             "go quiet")
    parser.add_argument("--retries", type=int, default=2,
                        help="repeats of a measurement other processes disturbed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--skip-throughput", action="store_true", help="skip benchmarks 1 and 2")
    parser.add_argument("--skip-startup", action="store_true", help="skip benchmark 3")
    args = parser.parse_args()
    args.binary = os.path.abspath(args.binary)

    work = tempfile.mkdtemp(prefix="wharf-bench-", dir=args.work_dir)
    fs_type = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True,
                             text=True).stdout.strip()
    log("Wharf benchmark: %s" % args.binary)
    log("  data dir %s (%s), %d CPUs, load average %s" % (work, fs_type, os.cpu_count(),
                                                           loadavg()))
    log("  wrk and the server share this machine's CPUs; the figures include that contention.")
    results, starts = {}, []
    try:
        baseline = empty_baseline(args, work)
        if not args.skip_throughput:
            log("\n[1, 2] DescribeClusters and RegisterTaskDefinition (wrk -t%d, %d s after %d s "
                "warm-up)" % (args.wrk_threads, args.duration, args.warmup))
            for threads in [int(t) for t in args.server_threads.split()]:
                throughput(args, work, threads, results)
        if not args.skip_startup:
            log("\n[3] Start-up with %d stored task definition revisions" % args.revisions)
            startup_dir = os.path.join(work, "startup")
            fill(args, startup_dir, os.path.join(work, "startup.log"))
            starts = startup(args, startup_dir, os.path.join(work, "startup.log"))
    finally:
        if args.keep:
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return summarise(args, results, starts, baseline)


def summarise(args, results, starts, baseline):
    log("\nSummary")
    rows = []
    for (name, threads), r in sorted(results.items(), key=lambda item: (item[0][0], item[0][1])):
        label = "%s, --threads %d" % (name, threads)
        if r["other_cpu"] > DISTURBED_CORES:
            label += " (disturbed)"
        if name == "DescribeClusters":
            rows.append((label, "%.0f/s" % r["rps"], ">= 20000/s",
                         verdict(r["rps"], TARGETS["describe_rps"], True)))
            rows.append(("  p50 / p99", "%.2f / %.2f ms" % (r["p50"], r["p99"]), "p99 <= 5 ms",
                         verdict(r["p99"], TARGETS["describe_p99_ms"], False), label + " p99"))
        else:
            rows.append((label, "%.0f/s" % r["rps"], ">= 2000/s",
                         verdict(r["rps"], TARGETS["register_rps"], True)))
            rows.append(("  p50 / p99", "%.2f / %.2f ms" % (r["p50"], r["p99"]), "", ""))
    if starts:
        # Starts other processes disturbed count only when every start was disturbed.
        starts = [s for s in starts if not s["disturbed"]] or starts
        startup_s = statistics.median(s["startup_s"] for s in starts)
        rows.append(("Start-up, %d revisions%s" % (starts[0]["revisions"], " (disturbed)"
                                                   if starts[0]["disturbed"] else ""),
                     "%.3f s" % startup_s, "<= 1 s", verdict(startup_s, TARGETS["startup_s"], False)))
        rows.append(("  state load (server log)",
                     "%d ms" % statistics.median(s["loaded_ms"] for s in starts), "", ""))
        rows.append(("  server CPU time to listening",
                     "%.2f s" % statistics.median(s["cpu_s"] for s in starts), "", ""))
        rows.append(("  VmRSS after start",
                     "%.1f MiB" % (statistics.median(s["rss_kib"] for s in starts) / 1024),
                     "", ""))
    rows.append(("Empty data dir: start-up / VmRSS", "%.3f s / %.1f MiB"
                 % (baseline["startup_s"], baseline["rss_kib"] / 1024), "", ""))
    for row in rows:
        log("  %-48s %18s  %-12s %s" % row[:4])
    log("  (start-up: median of %d fresh starts, launch to the listening line)" % len(starts)
        if starts else "")
    if results:
        log("wrk commands (the -s script replays one request signed with SigV4 by botocore):")
        for (name, threads), r in sorted(results.items()):
            if threads == min(t for (_, t) in results):
                log("  %-23s %s" % (name, re.sub(r"-s \S+", "-s %s.lua" % name, r["command"])))
    missed = [row[4] if len(row) > 4 else row[0] for row in rows if row[3] == "MISSED"]
    log("\nMissed: %s" % "; ".join(m.strip() for m in missed) if missed else "\nAll targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
