#!/usr/bin/env python3
"""Task launch benchmark (issue 4), run by bench/run.sh (`make bench`) as root.

A `wharf server` and one `wharf agent` on this machine run a busybox image (imported with
`wharf image import` into the server's registry) in tasks with networkMode none:
  1. RunTask -> RUNNING latency: --tasks tasks launched one after another (each left running),
     timed from the RunTask call until DescribeTasks says RUNNING (image cached, one warm-up task
     first); p50/p99. The client sends the SigV4-signed calls itself over one connection
     (EcsWire); the same through boto3 is measured at the end, for comparison;
  2. a burst: --burst tasks launched at once (RunTask count=10 from parallel callers) and the time
     until all are RUNNING; then the agent's resident memory and the largest wharf-shim's, with
     all of them running; then the time to stop them all;
  3. references measured in the same run on the same machine: `runc run --detach` and
     `crun run --detach` of a busybox bundle (the runtimes alone; crun run as the agent runs it),
     and `podman run -d --network none` when podman is installed.
The agent runs containers with --runtime (crun where it is installed, as the agent would choose).
Everything lives in a temporary directory that is removed at the end; processes are stopped by
PID and the containers of both references are deleted.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import queue
import resource
import shutil
import socket
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wharf_bench import (ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, Server,  # noqa: E402
                         busy_cpu_seconds, log, signed_headers)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import purge_agent_data, runtime_command, tcp  # noqa: E402  (clean-up, EC2, runtimes)

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "sleep", "echo", "cat", "true", "httpd")
TARGETS = {"p50_ms": 25.0, "p99_ms": 60.0, "burst_s": 3.0, "agent_rss_mib": 30.0,
           "shim_rss_mib": 1.0, "bridge_p50_ms": 40.0, "bridge_p99_ms": 100.0,
           "vpc_teardown_s": 2.0}


def make_rootfs(root):
    for directory in ("bin", "etc", "tmp"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc", "passwd"), "w") as passwd:
        passwd.write("root:x:0:0:root:/:/bin/sh\n")
    return root


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system CPU of a process and its waited-for children (runc is the child of a
    shim, which outlives the measurement, so its time is not in the agent's)."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(field) for field in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def pids_named(name):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as comm:
                if comm.read().strip() == name:
                    found.append(int(entry))
        except OSError:
            pass
    return found


class EcsWire:
    """ECS calls as the server sees them from any SDK: a JSON body POSTed over one keep-alive
    connection, SigV4-signed (botocore's signer). The timed loops use it rather than boto3, whose
    ~2 ms of Python per call (request building, response parsing) would be the client's time, not
    Wharf's, and would take CPU from the agent on these two cores; main() prints boto3's figure
    beside it."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        host, port = endpoint.split("://", 1)[1].rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.connection.connect()  # now, not inside the first timed call

    def call(self, operation, body):
        text = json.dumps(body)
        self.connection.request("POST", "/", body=text.encode(),
                                headers=signed_headers(self.endpoint, operation, text))
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError("%s: HTTP %d: %s" % (operation, response.status,
                                                   payload.decode(errors="replace")))
        return json.loads(payload)

    def close(self):
        self.connection.close()


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.server = None
        self.agent = None
        self.agent_log = None

    def clients(self):
        config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                        max_pool_connections=32)
        session = boto3.session.Session()
        make = lambda service: session.client(  # noqa: E731
            service, endpoint_url=self.server.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
            config=config)
        return make("ecs"), make("ecr"), make("ec2")

    def start(self):
        self.server = Server(self.args.binary, os.path.join(self.work, "server"), 2,
                             os.path.join(self.work, "server.log")).start()
        self.ecs, ecr, self.ec2 = self.clients()
        ecr.create_repository(repositoryName="busybox")
        self.image = self.server.endpoint.replace("http://", "") + "/busybox:latest"
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
                   AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        self.rootfs = make_rootfs(os.path.join(self.work, "rootfs"))
        subprocess.run([self.args.binary, "image", "import", self.rootfs, self.image], env=env,
                       check=True, capture_output=True)
        self.ecs.create_cluster(clusterName="bench")
        self.agent_dir = os.path.join(self.work, "agent")
        self.agent_log = open(os.path.join(self.work, "agent.log"), "w")
        self.agent = subprocess.Popen(
            [self.args.binary, "--log-level", self.args.agent_log_level, "agent", "--server", self.server.endpoint,
             "--cluster", "bench", "--data-dir", self.agent_dir, "--stop-timeout-seconds", "2",
             "--runtime", self.args.runtime],
            env=env, stdout=subprocess.DEVNULL, stderr=self.agent_log)
        deadline = time.monotonic() + 60
        while not self.ecs.list_container_instances(cluster="bench")["containerInstanceArns"]:
            if time.monotonic() > deadline or self.agent.poll() is not None:
                raise RuntimeError("the agent did not register; see %s" % self.agent_log.name)
            time.sleep(0.05)
        self.ecs.register_task_definition(
            family="bench", networkMode="none",
            containerDefinitions=[{"name": "main", "image": self.image, "memory": 16,
                                   "entryPoint": ["sleep"], "command": ["3600"]}])
        # Issue 5: bridge mode with one dynamic port mapping.
        self.ecs.register_task_definition(
            family="bench-bridge", networkMode="bridge",
            containerDefinitions=[{"name": "main", "image": self.image, "memory": 16,
                                   "entryPoint": ["sleep"], "command": ["3600"],
                                   "portMappings": [{"containerPort": 80, "hostPort": 0}]}])

        # Issue 5: awsvpc, in the default subnet; and a web server per task for the 100-task run,
        # in a group that admits port 80 from anywhere (the host included).
        self.subnet = self.ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
        self.web_group = self.ec2.create_security_group(
            GroupName="bench-web", Description="port 80 from anywhere")["GroupId"]
        self.ec2.authorize_security_group_ingress(
            GroupId=self.web_group, IpPermissions=[tcp(80, ["0.0.0.0/0"])])
        self.ecs.register_task_definition(
            family="bench-vpc", networkMode="awsvpc",
            containerDefinitions=[{"name": "main", "image": self.image, "memory": 16,
                                   "entryPoint": ["sleep"], "command": ["3600"]}])
        self.ecs.register_task_definition(
            family="bench-vpc-web", networkMode="awsvpc",
            containerDefinitions=[{"name": "main", "image": self.image, "memory": 16,
                                   "entryPoint": ["httpd"], "command": ["-f", "-p", "80"],
                                   "linuxParameters": {"initProcessEnabled": True}}])

    def network(self, family):
        if not family.startswith("bench-vpc"):
            return {}
        groups = [self.web_group] if family == "bench-vpc-web" else []
        return {"networkConfiguration": {"awsvpcConfiguration": {
            "subnets": [self.subnet], "securityGroups": groups}}}

    def run(self, count=1, family="bench", wire=None):
        """Starts `count` tasks of `family` through `wire` (an EcsWire), or boto3 when it is
        None; their ARNs."""
        request = dict(cluster="bench", taskDefinition=family, count=count,
                       **self.network(family))
        answer = (self.ecs.run_task(**request) if wire is None
                  else wire.call("RunTask", request))
        if answer["failures"]:
            raise RuntimeError("RunTask failed: %s" % answer["failures"])
        return [task["taskArn"] for task in answer["tasks"]]

    def statuses(self, arns):
        found = {}
        for start in range(0, len(arns), 100):
            for task in self.ecs.describe_tasks(cluster="bench",
                                                tasks=arns[start:start + 100])["tasks"]:
                found[task["taskArn"]] = task
        return found

    def wait_all(self, arns, status, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.statuses(arns)
            if all(task["lastStatus"] == status for task in tasks.values()):
                return
            stopped = [task for task in tasks.values()
                       if task["lastStatus"] == "STOPPED" and status != "STOPPED"]
            if stopped:
                raise RuntimeError("a task stopped: %s" % stopped[0].get("stoppedReason"))
            # Describing hundreds of tasks costs CPU the agent needs; 20 ms is fine enough.
            time.sleep(0.02)
        raise RuntimeError("tasks did not reach %s within %d s" % (status, timeout))

    def stop_all(self, arns):
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda arn: self.ecs.stop_task(cluster="bench", task=arn), arns))
        self.wait_all(arns, "STOPPED")

    def describe_one(self, arn, wire):
        """The task's lastStatus, stoppedReason and createdAt -> startedAt in ms (None before
        RUNNING), through `wire` or boto3 as in run()."""
        if wire is None:  # boto3 parses timestamps into datetimes
            task = self.ecs.describe_tasks(cluster="bench", tasks=[arn])["tasks"][0]
            seconds = lambda stamp: stamp.timestamp()  # noqa: E731
        else:
            task = wire.call("DescribeTasks", {"cluster": "bench", "tasks": [arn]})["tasks"][0]
            seconds = lambda stamp: stamp  # noqa: E731
        stamped = ((seconds(task["startedAt"]) - seconds(task["createdAt"])) * 1000
                   if "startedAt" in task else None)
        return task["lastStatus"], task.get("stoppedReason"), stamped

    def latency(self, family="bench", boto=False):
        """--tasks tasks of `family` launched one after another, each timed from the RunTask call
        until DescribeTasks says RUNNING, through EcsWire (boto3 with `boto`); all are left
        running until the end, then stopped."""
        self.stamped = []
        warm = self.run(family=family)
        self.wait_all(warm, "RUNNING")
        self.stop_all(warm)
        wire = None if boto else EcsWire(self.server.endpoint)
        times, arns = [], []
        try:
            for _ in range(self.args.tasks):
                begin = time.monotonic()
                [arn] = self.run(family=family, wire=wire)
                while True:
                    status, reason, stamped = self.describe_one(arn, wire)
                    if status == "RUNNING":
                        # The control plane's own stamps too: createdAt (RunTask) to startedAt
                        # (the agent's RUNNING report), without the client's polling in the way.
                        self.stamped.append(stamped)
                        break
                    if status == "STOPPED":
                        raise RuntimeError("task stopped: %s" % reason)
                    # A pause between polls leaves the two cores to the agent and runc; it
                    # costs the measurement at most this much.
                    time.sleep(self.args.poll_ms / 1000)
                times.append((time.monotonic() - begin) * 1000)
                arns.append(arn)
        finally:
            if wire is not None:
                wire.close()
        begin = time.monotonic()
        self.stop_all(arns)
        return times, time.monotonic() - begin

    def awsvpc_hundred(self, count=100):
        """`count` awsvpc web servers on the host, each reached on its own address; then the
        time from StopTask to all STOPPED (namespaces, routes and rules gone)."""
        begin = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            arns = [arn for batch in pool.map(lambda n: self.run(n, "bench-vpc-web"),
                                              [10] * (count // 10)) for arn in batch]
        self.wait_all(arns, "RUNNING")
        started_s = time.monotonic() - begin
        addresses = []
        for task in self.statuses(arns).values():
            details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
            addresses.append(details["privateIPv4Address"])
        reachable = 0
        for address in addresses:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection((address, 80), timeout=1):
                        reachable += 1
                        break
                except OSError:
                    time.sleep(0.05)
        begin = time.monotonic()
        self.stop_all(arns)
        return started_s, reachable, len(arns), time.monotonic() - begin

    def burst(self):
        calls = [10] * (self.args.burst // 10)
        cpu_before = (cpu_seconds(self.agent.pid), cpu_seconds(self.server.process.pid),
                      os.times(), busy_cpu_seconds())
        # Through EcsWire, as the latency loops: boto3's Python would take CPU from the agent.
        # One connection per calling thread, connected before the clock starts.
        wires = [EcsWire(self.server.endpoint) for _ in range(9)]  # the first one polls
        free = queue.SimpleQueue()
        for wire in wires[1:]:
            free.put(wire)

        def start(count):
            wire = free.get()
            try:
                return self.run(count, wire=wire)
            finally:
                free.put(wire)

        try:
            begin = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(len(wires) - 1) as pool:
                arns = [arn for batch in pool.map(start, calls) for arn in batch]
            # The cluster's running count is a cheap poll (describing 200 tasks every few ms
            # would cost the client more CPU than the agent uses); the tasks are checked one by
            # one after.
            deadline = begin + 120
            while time.monotonic() < deadline:
                cluster = wires[0].call("DescribeClusters",
                                        {"clusters": ["bench"]})["clusters"][0]
                if cluster["runningTasksCount"] >= len(arns):
                    break
                time.sleep(0.01)
            elapsed = time.monotonic() - begin
        finally:
            for wire in wires:
                wire.close()
        self.wait_all(arns, "RUNNING", timeout=1)
        now = os.times()
        busy = busy_cpu_seconds()
        self.burst_cpu = (sum(busy) - sum(cpu_before[3]),
                          cpu_seconds(self.agent.pid) - cpu_before[0],
                          cpu_seconds(self.server.process.pid) - cpu_before[1],
                          (now.elapsed - cpu_before[2].elapsed) * os.cpu_count())
        agent_rss = rss_kib(self.agent.pid) / 1024
        time.sleep(12)  # past the agent's next heartbeat, where it trims malloc's free memory
        self.steady_rss = rss_kib(self.agent.pid) / 1024
        shims = pids_named("wharf-shim")
        shim_rss = max((rss_kib(pid) for pid in shims), default=0) / 1024
        begin = time.monotonic()
        self.stop_all(arns)
        return elapsed, agent_rss, shim_rss, len(shims), time.monotonic() - begin

    def stop(self):
        if self.agent is not None and self.agent.poll() is None:
            try:  # a run that failed half-way may have left tasks running
                arns = self.ecs.list_tasks(cluster="bench", maxResults=100)["taskArns"]
                while arns:
                    self.stop_all(arns)
                    arns = self.ecs.list_tasks(cluster="bench", maxResults=100)["taskArns"]
            except Exception as error:  # noqa: BLE001 - the purge below still cleans up
                log("[tasks] stopping leftover tasks: %s" % error)
            self.agent.send_signal(signal.SIGTERM)
            self.agent.wait(timeout=60)
            purge_agent_data(self.agent_dir)
        if self.agent_log:
            self.agent_log.close()
        if self.server:
            self.server.stop()


def runtime_reference(work, rootfs, runs, command):
    """`<runtime> run --detach` of a busybox bundle: the OCI runtime alone."""
    bundle = tempfile.mkdtemp(prefix="bundle-", dir=work)
    subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
    with open(os.path.join(bundle, "config.json")) as file:
        spec = json.load(file)
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sleep", "3600"]
    spec["linux"].setdefault("resources", {})["memory"] = {"limit": 16 << 20}
    with open(os.path.join(bundle, "config.json"), "w") as file:
        json.dump(spec, file)
    root = os.path.join(bundle, "state")
    times, ids = [], []
    try:
        for index in range(runs):
            container = "bench-%d-%d" % (os.getpid(), index)
            begin = time.monotonic()
            subprocess.run(command + ["--root", root, "run", "--detach", "--bundle", bundle,
                                      container], check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append((time.monotonic() - begin) * 1000)
            ids.append(container)
    finally:
        for container in ids:
            subprocess.run(command + ["--root", root, "delete", "--force", container],
                           capture_output=True)
    return times


def podman_reference(work, rootfs, runs, network=("--network", "none")):
    """`podman run -d` of the same busybox (by default `--network none`; `("-p", "80")`
    publishes a port on podman's bridge), when podman is installed. Podman's bridge and the
    iptables tables its CNI plugins create are removed afterwards unless they were there before."""
    if shutil.which("podman") is None:
        return None
    had_bridge = os.path.exists("/sys/class/net/cni-podman0")
    tables_before = set(subprocess.run(["nft", "list", "tables"], capture_output=True,
                                       text=True).stdout.splitlines())
    tar = os.path.join(work, "rootfs.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
    image = "localhost/wharf-bench-busybox:latest"
    subprocess.run(["podman", "import", tar, image], check=True, capture_output=True)
    # runc, as for Wharf (podman's default crun refuses this host's hybrid cgroups), and
    # rlimits within this host's hard limits (podman's default nofile is above them).
    command = ["podman", "run", "-d", "--runtime", "runc", *network,
               "--ulimit", "nofile=%d:%d" % resource.getrlimit(resource.RLIMIT_NOFILE),
               "--ulimit", "nproc=1024:1024",
               image, "sleep", "3600"]
    times, ids = [], []
    try:
        warm = subprocess.run(command, check=True, capture_output=True, text=True)
        ids.append(warm.stdout.strip())
        for _ in range(runs):
            begin = time.monotonic()
            started = subprocess.run(command, check=True, capture_output=True, text=True)
            times.append((time.monotonic() - begin) * 1000)
            ids.append(started.stdout.strip())
    finally:
        if ids:
            subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True)
        subprocess.run(["podman", "rmi", "-f", image], capture_output=True)
        if not had_bridge and os.path.exists("/sys/class/net/cni-podman0"):
            subprocess.run(["ip", "link", "delete", "cni-podman0"], capture_output=True)
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True,
                                text=True).stdout.splitlines()
        for table in tables:
            if table not in tables_before and table.startswith("table "):
                subprocess.run(["nft", "delete", *table.split()], capture_output=True)
    return times


def print_latency(times, stamped, p50_target, p99_target):
    """Wharf's RunTask -> RUNNING figures against two of TARGETS, then the server's stamps."""
    p50, p99 = statistics.median(times), percentile(times, 0.99)
    print("  Wharf         p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms   (targets %.0f / %.0f ms: %s / %s)"
          % (p50, p99, max(times), TARGETS[p50_target], TARGETS[p99_target],
             verdict(p50, TARGETS[p50_target]), verdict(p99, TARGETS[p99_target])))
    print_stamped(stamped)


def print_stamped(stamped):
    print("  (the control plane's own stamps, createdAt -> startedAt: p50 %6.1f ms  p99 %6.1f ms;"
          " the client, signed HTTP over one connection, polls every 1 ms on the same two cores)"
          % (statistics.median(stamped), percentile(stamped, 0.99)))


def verdict(value, target):
    return "met" if value <= target else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--reference-runs", type=int, default=30)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--agent-log-level", default="warn")
    parser.add_argument("--poll-ms", type=float, default=1.0,
                        help="pause between DescribeTasks polls while waiting for RUNNING")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--runtime", default="crun" if shutil.which("crun") else "runc",
                        help="the agent's OCI runtime (default: crun where installed, as the "
                        "agent would choose)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("[tasks] skipped: containers need root")
        return 0
    work = tempfile.mkdtemp(prefix="wharf-task-bench-", dir=args.work_dir)
    bench = Bench(args, work)
    try:
        log("[tasks] starting a server and an agent in %s" % work)
        bench.start()
        log("[tasks] RunTask -> RUNNING, %d tasks one after another" % args.tasks)
        times, stop_s = bench.latency()
        stamped = bench.stamped
        log("[tasks] the same in bridge mode with a dynamic port mapping")
        bridge_times, _ = bench.latency("bench-bridge")
        bridge_stamped = bench.stamped
        log("[tasks] %d tasks at once" % args.burst)
        burst_s, agent_rss, shim_rss, shims, burst_stop_s = bench.burst()
        # After the burst: the kernel destroys the namespaces of stopped awsvpc tasks in the
        # background for a while, which would be CPU taken from the burst.
        log("[tasks] the same in awsvpc (issue 5)")
        vpc_times, _ = bench.latency("bench-vpc")
        vpc_stamped = bench.stamped
        log("[tasks] 100 awsvpc tasks, each reached by its address, then torn down")
        vpc_started_s, vpc_reachable, vpc_count, vpc_teardown_s = bench.awsvpc_hundred()
        # Last, so that the stages before run as they did before this one was added.
        log("[tasks] none again, through boto3")
        boto_times, _ = bench.latency(boto=True)
        boto_stamped = bench.stamped
        bench.stop()
        log("[tasks] references: runc run, crun run, podman run")
        references = {runtime: runtime_reference(work, bench.rootfs, args.reference_runs,
                                                 runtime_command(runtime, args.binary))
                      for runtime in ("runc", "crun") if shutil.which(runtime)}
        podman = podman_reference(work, bench.rootfs, args.reference_runs)
        podman_port = podman_reference(work, bench.rootfs, args.reference_runs, ("-p", "80"))
    finally:
        bench.stop()
        if args.keep:
            log("[tasks] kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print("[tasks] RunTask -> RUNNING over %d tasks (networkMode none, image cached, agent on "
          "%s):" % (len(times), args.runtime))
    print_latency(times, stamped, "p50_ms", "p99_ms")
    print("  the same through boto3 (its Python in the client's time; measured last): p50 %6.1f ms"
          "  p99 %6.1f ms;"
          " stamps p50 %6.1f ms" % (statistics.median(boto_times), percentile(boto_times, 0.99),
                                   statistics.median(boto_stamped)))
    for runtime, runs in references.items():
        print("  %s run -d   p50 %6.1f ms  p99 %6.1f ms   (%d runs)"
              % (runtime, statistics.median(runs), percentile(runs, 0.99), len(runs)))
    if podman:
        print("  podman run -d --network none p50 %6.1f ms  p99 %6.1f ms   (%d runs)"
              % (statistics.median(podman), percentile(podman, 0.99), len(podman)))
    else:
        print("  podman run -d not installed (apt-get install podman)")
    print("  stopping the %d tasks: %.2f s" % (len(times), stop_s))
    print("[tasks] the same in bridge mode, one dynamic port mapping (issue 5):")
    print_latency(bridge_times, bridge_stamped, "bridge_p50_ms", "bridge_p99_ms")
    if podman_port:
        print("  podman run -d -p 80 p50 %6.1f ms  p99 %6.1f ms   (%d runs)"
              % (statistics.median(podman_port), percentile(podman_port, 0.99),
                 len(podman_port)))
    print("[tasks] the same in awsvpc, default subnet and group (issue 5):")
    print_latency(vpc_times, vpc_stamped, "bridge_p50_ms", "bridge_p99_ms")
    print("[tasks] %d awsvpc web servers: RUNNING in %.2f s, %d reachable from the host by their "
          "addresses; all STOPPED %.2f s after StopTask (target %.0f s: %s)"
          % (vpc_count, vpc_started_s, vpc_reachable, vpc_teardown_s, TARGETS["vpc_teardown_s"],
             verdict(vpc_teardown_s, TARGETS["vpc_teardown_s"])))
    print("[tasks] %d tasks at once: all RUNNING in %.2f s (target %.0f s: %s); stopped in %.2f s"
          % (args.burst, burst_s, TARGETS["burst_s"], verdict(burst_s, TARGETS["burst_s"]),
             burst_stop_s))
    print("  CPU during the burst: %.2f s busy of %.2f s (agent itself %.2f s, server %.2f s; "
          "the runtime runs under the shims)" % (bench.burst_cpu[0], bench.burst_cpu[3],
                                          bench.burst_cpu[1], bench.burst_cpu[2]))
    print("  agent VmRSS with %d tasks running: %.1f MiB right after the burst, %.1f MiB 12 s "
          "later (target %.0f MiB: %s)"
          % (args.burst, agent_rss, bench.steady_rss, TARGETS["agent_rss_mib"],
             verdict(bench.steady_rss, TARGETS["agent_rss_mib"])))
    print("  wharf-shim VmRSS %.2f MiB at most over %d shims (target %.0f MiB: %s)"
          % (shim_rss, shims, TARGETS["shim_rss_mib"], verdict(shim_rss, TARGETS["shim_rss_mib"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
