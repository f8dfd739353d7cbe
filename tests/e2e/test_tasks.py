"""Tasks as real containers: a real server and real `wharf agent` processes (as root, under
runc) run a busybox image that `wharf image import` pushed to the server's registry. RunTask,
DescribeTasks, ListTasks, StopTask and the aws CLI waiters; exit codes, essential and
non-essential exits, OOM kills, dependsOn, health checks, start failures, placement across two
agents, draining, and an agent killed with -9 and restarted next to its containers."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import boto3

from harness import (ACCESS_KEY, REGION, SECRET_KEY, WHARF, WharfAgent, WharfServer,
                     WharfTestCase, purge_agent_data)

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "echo", "cat", "sleep", "true", "false", "test", "touch", "ls", "head", "dd",
           "printf", "wget", "httpd", "env", "id", "hostname")
HEARTBEAT_ARGS = ["--agent-heartbeat-seconds", "1"]
# Containers that ignore SIGTERM (a shell as PID 1 without a trap) are killed after 2 s.
AGENT_ARGS = ["--heartbeat-seconds", "1", "--stop-timeout-seconds", "2"]


def needs_root_and_runc():
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("runc") is None:
        return "needs runc (apt-get install runc)"
    if not os.path.exists(BUSYBOX):
        return "needs busybox-static"
    return None


def make_busybox_rootfs(root):
    for directory in ("bin", "etc", "tmp", "root"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc", "passwd"), "w") as passwd:
        passwd.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as group:
        group.write("root:x:0:\nnogroup:x:65534:\n")
    return root


def read_or_empty(path, mode="r"):
    """A /proc file's content, or empty when the process has gone meanwhile."""
    try:
        with open(path, mode) as file:
            return file.read()
    except OSError:
        return b"" if "b" in mode else ""


def import_image(rootfs, image):
    """`wharf image import` of a rootfs directory as `image`, pushed with the admin's keys."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    subprocess.run([WHARF, "image", "import", rootfs, image, "--cmd", "sh"], env=env,
                   check=True, capture_output=True, timeout=120)


class AgentTestCase(WharfTestCase):
    """A server, a busybox image in its registry, the cluster "prod" and one agent in it."""

    families = 0

    @classmethod
    def setUpClass(cls):
        cls.server = WharfServer(extra_args=HEARTBEAT_ARGS)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.ecs = cls.server.client()
        cls.server.client("ecr").create_repository(repositoryName="busybox")
        cls.tmp = tempfile.mkdtemp(prefix="wharf-e2e-tasks-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        rootfs = make_busybox_rootfs(os.path.join(cls.tmp, "rootfs"))
        cls.image = f"127.0.0.1:{cls.server.port}/busybox:latest"
        import_image(rootfs, cls.image)
        cls.ecs.create_cluster(clusterName="prod")
        cls.agent = WharfAgent(cls.server, "prod", extra_args=AGENT_ARGS)
        cls.addClassCleanup(cls.agent.cleanup)
        cls.agent.start()
        cls.instance_arn = cls.agent.wait_registered()

    # --- helpers ---------------------------------------------------------------------------

    def register(self, containers, network_mode="none", **extra):
        AgentTestCase.families += 1
        family = f"{self.id().split('.')[-1][:40]}-{AgentTestCase.families}"
        for container in containers:
            container.setdefault("image", self.image)
            container.setdefault("memory", 64)
        self.ecs.register_task_definition(family=family, networkMode=network_mode,
                                          containerDefinitions=containers, **extra)
        return family

    def run_task(self, family, cluster="prod", **extra):
        answer = self.ecs.run_task(cluster=cluster, taskDefinition=family, **extra)
        self.assertEqual(answer["failures"], [], answer)
        arns = [task["taskArn"] for task in answer["tasks"]]
        for arn in arns:
            self.addCleanup(self.stop_quietly, cluster, arn)
        return arns

    def stop_quietly(self, cluster, arn):
        try:
            self.ecs.stop_task(cluster=cluster, task=arn, reason="test cleanup")
            self.wait_status(cluster, arn, "STOPPED", timeout=30)
        except Exception:  # noqa: BLE001 - cleanup must not mask the test's own failure
            pass

    def describe(self, arn, cluster="prod"):
        answer = self.ecs.describe_tasks(cluster=cluster, tasks=[arn])
        self.assertEqual(answer["failures"], [], answer)
        return answer["tasks"][0]

    def wait_status(self, cluster, arn, status, timeout=30):
        deadline = time.time() + timeout
        task = None
        while time.time() < deadline:
            task = self.ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
            if task["lastStatus"] == status:
                return task
            if status != "STOPPED" and task["lastStatus"] == "STOPPED":
                self.fail(f"task stopped instead of reaching {status}: {task}")
            time.sleep(0.05)
        self.fail(f"task did not reach {status} within {timeout} s: {task}\n{self.agent.log()}")

    def wait_for(self, predicate, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        self.fail(f"timed out waiting for {what}")

    def container(self, task, name):
        return next(container for container in task["containers"] if container["name"] == name)

    def output_of_run(self, family, container):
        """Runs a task of `family` to its end and returns what `container` wrote to stdout; the
        container must exit 0."""
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(self.container(task, container)["exitCode"], 0)
        with open(os.path.join(self.log_dir(arn, container), "stdout")) as out:
            return out.read()

    def log_dir(self, arn, container):
        """Where the agent keeps the container's stdout and stderr."""
        return os.path.join(self.agent.data_dir, "containers", arn.rsplit("/", 1)[1], container,
                            "logs")

    def metadata_seen_from_inside(self, network_mode, **run_args):
        """Runs a task whose container reads its metadata endpoint and prints what it got."""
        script = ('sleep 1; for path in "" /task /stats /task/stats; do '
                  'wget -qO- "$ECS_CONTAINER_METADATA_URI_V4$path"; echo; done; '
                  'echo "$ECS_CONTAINER_METADATA_URI_V4"; sleep 60')
        family = self.register([{"name": "reader", "entryPoint": ["sh", "-c"],
                                 "command": [script]}], network_mode=network_mode)
        [arn] = self.run_task(family, **run_args)
        task = self.wait_status("prod", arn, "RUNNING")
        stdout = os.path.join(self.log_dir(arn, "reader"), "stdout")

        def lines():
            with open(stdout) as out:
                text = out.read()
            return text.splitlines() if text.count("\n") >= 5 else None
        got = self.wait_for(lines, "the metadata reads")[:5]
        # Four JSON documents, then the URI the container was given.
        return task, [json.loads(line) for line in got[:4]] + [got[4]]

    def check_metadata(self, task, seen):
        container, task_metadata, stats, task_stats, _ = seen
        reader = self.container(task, "reader")
        self.assertEqual(container["DockerId"], reader["runtimeId"])
        self.assertEqual(container["Name"], "reader")
        self.assertEqual(container["ContainerARN"], reader["containerArn"])
        self.assertEqual(container["ImageID"], reader["imageDigest"])
        self.assertEqual(container["KnownStatus"], "RUNNING")
        self.assertEqual(task_metadata["TaskARN"], task["taskArn"])
        self.assertEqual(task_metadata["Cluster"], task["clusterArn"])
        self.assertEqual(task_metadata["LaunchType"], "EC2")
        self.assertEqual(task_metadata["AvailabilityZone"], task["availabilityZone"])
        self.assertEqual([entry["Name"] for entry in task_metadata["Containers"]], ["reader"])
        self.assertGreater(stats["memory_stats"]["usage"], 0)
        self.assertGreater(stats["cpu_stats"]["cpu_usage"]["total_usage"], 0)
        self.assertEqual(list(task_stats), [reader["runtimeId"]])
        return container, stats



@unittest.skipIf(needs_root_and_runc(), needs_root_and_runc())
class TaskTest(AgentTestCase):

    def test_run_describe_wait_and_stop(self):
        family = self.register([{"name": "main", "entryPoint": ["sh", "-c"],
                                 "command": ["trap 'exit 143' TERM; sleep 60 & wait"]}])
        arns = self.run_task(family, count=2, startedBy="e2e", group="tests")
        self.assertEqual(len(arns), 2)
        for arn in arns:
            self.wait_status("prod", arn, "RUNNING")
        self.server.aws("ecs", "wait", "tasks-running", "--cluster", "prod", "--tasks", *arns)
        task = self.describe(arns[0])
        self.assertEqual(task["lastStatus"], "RUNNING")
        self.assertEqual(task["desiredStatus"], "RUNNING")
        self.assertEqual(task["containerInstanceArn"], self.instance_arn)
        self.assertEqual(task["launchType"], "EC2")
        self.assertEqual(task["startedBy"], "e2e")
        self.assertEqual(task["group"], "tests")
        for stamp in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt"):
            self.assertIn(stamp, task)
        main = self.container(task, "main")
        self.assertEqual(main["lastStatus"], "RUNNING")
        self.assertTrue(main["runtimeId"])
        self.assertRegex(main["imageDigest"], r"^sha256:[0-9a-f]{64}$")
        listed = self.ecs.list_tasks(cluster="prod", family=family)["taskArns"]
        self.assertEqual(sorted(listed), sorted(arns))
        instance = self.ecs.describe_container_instances(
            cluster="prod", containerInstances=[self.instance_arn])["containerInstances"][0]
        self.assertGreaterEqual(instance["runningTasksCount"], 2)
        # What the agent starts gets the environment it was given, not its own malloc setting.
        shims = [pid for pid in os.listdir("/proc") if pid.isdigit()
                 and read_or_empty("/proc/%s/comm" % pid).strip() == "wharf-shim"]
        self.assertTrue(shims)
        for pid in shims:
            names = [entry.split(b"=", 1)[0] for entry in
                     read_or_empty("/proc/%s/environ" % pid, "rb").split(b"\0")]
            self.assertNotIn(b"WHARF_AGENT_MALLOC", names)
            self.assertNotIn(b"WHARF_AGENT_GNUTLS", names)
            for own in ("GLIBC_TUNABLES", "GNUTLS_NO_IMPLICIT_INIT"):
                if own not in os.environ:
                    self.assertNotIn(own.encode(), names)

        stopped = self.ecs.stop_task(cluster="prod", task=arns[0], reason="enough")["task"]
        self.assertEqual(stopped["desiredStatus"], "STOPPED")
        self.wait_status("prod", arns[0], "STOPPED")
        self.server.aws("ecs", "wait", "tasks-stopped", "--cluster", "prod", "--tasks", arns[0])
        task = self.describe(arns[0])
        self.assertEqual(task["stopCode"], "UserInitiated")
        self.assertEqual(task["stoppedReason"], "enough")
        self.assertEqual(self.container(task, "main")["exitCode"], 143)
        for stamp in ("stoppingAt", "executionStoppedAt", "stoppedAt"):
            self.assertIn(stamp, task)
        self.assertEqual(self.describe(arns[1])["lastStatus"], "RUNNING")
        stopped_list = self.ecs.list_tasks(cluster="prod", family=family,
                                           desiredStatus="STOPPED")["taskArns"]
        self.assertEqual(stopped_list, [arns[0]])

    def test_essential_and_non_essential_exits(self):
        family = self.register([
            {"name": "main", "entryPoint": ["sh", "-c"], "command": ["sleep 60"]},
            {"name": "helper", "essential": False, "entryPoint": ["sh", "-c"],
             "command": ["exit 5"]}])
        [arn] = self.run_task(family)
        task = self.wait_for(
            lambda: (lambda t: t if self.container(t, "helper").get("exitCode") == 5 else None)(
                self.describe(arn)), "the non-essential container's exit")
        self.assertEqual(task["lastStatus"], "RUNNING")
        self.assertEqual(self.container(task, "helper")["lastStatus"], "STOPPED")

        family = self.register([{"name": "main", "entryPoint": ["sh", "-c"],
                                 "command": ["echo bye; exit 3"]}])
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "EssentialContainerExited")
        self.assertEqual(task["stoppedReason"], "Essential container in task exited")
        self.assertEqual(self.container(task, "main")["exitCode"], 3)
        self.assertEqual(task["desiredStatus"], "STOPPED")

    def test_an_oom_kill_has_the_right_reason(self):
        family = self.register([{"name": "hog", "memory": 16, "entryPoint": ["sh", "-c"],
                                 "command": ["x=aaaaaaaa; while true; do x=$x$x; done"]}])
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        hog = self.container(task, "hog")
        self.assertEqual(hog["exitCode"], 137)
        self.assertEqual(hog["reason"], "OutOfMemoryError: Container killed due to memory usage")

    def test_depends_on_orders_start_up(self):
        family = self.register([
            {"name": "init", "essential": False, "entryPoint": ["sh", "-c"],
             "command": ["sleep 0.5; exit 0"]},
            {"name": "app", "entryPoint": ["sh", "-c"], "command": ["sleep 60"],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}])
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "RUNNING")
        self.assertEqual(self.container(task, "init")["lastStatus"], "STOPPED")
        self.assertEqual(self.container(task, "init")["exitCode"], 0)
        self.assertEqual(self.container(task, "app")["lastStatus"], "RUNNING")

        family = self.register([
            {"name": "init", "essential": False, "entryPoint": ["sh", "-c"],
             "command": ["exit 1"]},
            {"name": "app", "entryPoint": ["sh", "-c"], "command": ["sleep 60"],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}])
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("init", task["stoppedReason"])
        self.assertEqual(self.container(task, "app")["lastStatus"], "STOPPED")
        self.assertNotIn("exitCode", self.container(task, "app"))

    def test_a_starting_task_is_reported_pending_after_two_seconds(self):
        # The agent holds a new task's reports while it starts, for two seconds: a quick launch
        # is reported once, as RUNNING. This one waits 4 s for its init container, so it shows
        # PENDING from 2 s on (the agent wakes for it; nothing else changes then).
        family = self.register([
            {"name": "init", "essential": False, "entryPoint": ["sh", "-c"],
             "command": ["sleep 4; exit 0"]},
            {"name": "app", "entryPoint": ["sh", "-c"], "command": ["sleep 60"],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}])
        began = time.monotonic()
        [arn] = self.run_task(family)
        seen = {}
        while time.monotonic() - began < 3.5:
            task = self.describe(arn)
            seen.setdefault(task["lastStatus"], time.monotonic() - began)
            if task["lastStatus"] == "PENDING":
                self.assertIn("pullStartedAt", task)
                break
            time.sleep(0.05)
        self.assertIn("PENDING", seen, seen)
        self.assertGreaterEqual(seen["PENDING"], 1.5, seen)
        task = self.wait_status("prod", arn, "RUNNING")
        self.assertEqual(self.container(task, "init")["exitCode"], 0)

    def test_health_checks_drive_health_status(self):
        healthy = self.register([{"name": "web", "entryPoint": ["sh", "-c"],
                                  "command": ["touch /tmp/ok; sleep 60"],
                                  "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ok"],
                                                  "interval": 5, "retries": 1}}])
        sick = self.register([{"name": "web", "entryPoint": ["sh", "-c"],
                               "command": ["sleep 60"],
                               "healthCheck": {"command": ["CMD", "false"], "interval": 5,
                                               "retries": 1}}])
        [good] = self.run_task(healthy)
        [bad] = self.run_task(sick)
        task = self.wait_for(lambda: (lambda t: t if t.get("healthStatus") == "HEALTHY" else None)(
            self.describe(good)), "a healthy task")
        self.assertEqual(self.container(task, "web")["healthStatus"], "HEALTHY")
        task = self.wait_for(lambda: (lambda t: t if t.get("healthStatus") == "UNHEALTHY"
                                      else None)(self.describe(bad)), "an unhealthy task")
        self.assertEqual(self.container(task, "web")["healthStatus"], "UNHEALTHY")

    def test_a_task_that_cannot_start_says_why(self):
        missing = self.register([{"name": "main",
                                  "image": f"127.0.0.1:{self.server.port}/busybox:nope"}])
        [arn] = self.run_task(missing)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("CannotPullContainerError", task["stoppedReason"])
        self.assertIn("busybox:nope", task["stoppedReason"])

        bad_command = self.register([{"name": "main", "entryPoint": ["/no/such/program"]}])
        [arn] = self.run_task(bad_command)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("CannotStartContainerError", task["stoppedReason"])
        self.assertIn("/no/such/program", task["stoppedReason"])

        # The image is cached now: its container's rootfs is mounted while the other container's
        # image is pulled, and the failed task's teardown must unmount it, though that container
        # was never created.
        half = self.register([{"name": "cached", "entryPoint": ["true"]},
                              {"name": "main",
                               "image": f"127.0.0.1:{self.server.port}/busybox:nope"}])
        [arn] = self.run_task(half)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertIn("CannotPullContainerError", task["stoppedReason"])
        task_id = arn.rsplit("/", 1)[1]
        self.wait_for(lambda: task_id not in read_or_empty("/proc/self/mountinfo"),
                      "the cached container's rootfs to be unmounted", timeout=10)

    def test_container_output_goes_to_log_files(self):
        family = self.register([{"name": "talker", "entryPoint": ["sh", "-c"],
                                 "command": ["echo out; echo err >&2"],
                                 "environment": [{"name": "X", "value": "1"}]}])
        [arn] = self.run_task(family)
        self.wait_status("prod", arn, "STOPPED")
        logs = self.log_dir(arn, "talker")
        with open(os.path.join(logs, "stdout")) as out, open(os.path.join(logs, "stderr")) as err:
            self.assertEqual((out.read(), err.read()), ("out\n", "err\n"))

    def test_a_container_running_as_another_user_reads_its_etc_files(self):
        # /etc/hosts, /etc/hostname and /etc/resolv.conf come from the agent; like a host's
        # they are world-readable, or name lookups fail for any user but root.
        family = self.register([{"name": "nobody", "user": "65534:65534",
                                 "entryPoint": ["sh", "-c"],
                                 "command": ["id -u; cat /etc/hosts /etc/hostname /etc/resolv.conf"
                                             " > /dev/null && echo readable"]}])
        self.assertEqual(self.output_of_run(family, "nobody"), "65534\nreadable\n")

    def test_every_container_runs_under_the_default_seccomp_filter(self):
        # Docker's default profile refuses unshare() to a container without CAP_SYS_ADMIN, which
        # the kernel alone would let make a user namespace. crun compiles the profile once; later
        # containers get the compiled program, and the filter must hold for them too.
        family = self.register([{"name": "probe", "entryPoint": ["sh", "-c"],
                                 "command": ["unshare -U true; echo $?; "
                                             "grep Seccomp: /proc/self/status"]}])
        for _ in range(3):
            self.assertEqual(self.output_of_run(family, "probe"), "1\nSeccomp:\t2\n")

    def test_a_tag_pushed_again_runs_its_new_image(self):
        # The agent mounts a cached image's rootfs while it checks the tag with the registry;
        # when the tag has moved, the next task must still run the image the tag names now.
        image = f"127.0.0.1:{self.server.port}/busybox:moving"
        outputs = []
        for version in ("one", "two"):
            rootfs = os.path.join(self.tmp, "moving-" + version)
            shutil.copytree(os.path.join(self.tmp, "rootfs"), rootfs, symlinks=True)
            self.addCleanup(shutil.rmtree, rootfs, True)
            with open(os.path.join(rootfs, "version"), "w") as marker:
                marker.write(version + "\n")
            import_image(rootfs, image)
            family = self.register([{"name": "reader", "image": image,
                                     "entryPoint": ["cat"], "command": ["/version"]}])
            outputs.append(self.output_of_run(family, "reader"))
        self.assertEqual(outputs, ["one\n", "two\n"])

    def test_agent_kill_and_restart_keeps_containers(self):
        family = self.register([
            {"name": "long", "entryPoint": ["sh", "-c"],
             "command": ["trap 'exit 143' TERM; sleep 60 & wait"]},
            {"name": "short", "essential": False, "entryPoint": ["sh", "-c"],
             "command": ["sleep 2; exit 4"]}])
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "RUNNING")
        runtime_id = self.container(task, "long")["runtimeId"]
        self.agent.kill9()
        time.sleep(3)  # `short` exits while no agent watches
        self.agent.start()
        self.agent.wait_registered()
        task = self.wait_for(
            lambda: (lambda t: t if self.container(t, "short").get("exitCode") == 4 else None)(
                self.describe(arn)), "the exit that happened while the agent was down")
        self.assertEqual(task["lastStatus"], "RUNNING")
        self.assertEqual(self.container(task, "long")["runtimeId"], runtime_id)
        self.ecs.stop_task(cluster="prod", task=arn)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(self.container(task, "long")["exitCode"], 143)

    def test_overrides_change_command_and_environment(self):
        family = self.register([{"name": "talker", "entryPoint": ["sh", "-c"],
                                 "command": ["echo default"],
                                 "environment": [{"name": "WHO", "value": "definition"}]}])
        [arn] = self.run_task(family, overrides={"containerOverrides": [
            {"name": "talker", "command": ["echo $WHO $EXTRA"],
             "environment": [{"name": "WHO", "value": "override"},
                             {"name": "EXTRA", "value": "too"}]}]})
        self.wait_status("prod", arn, "STOPPED")
        logs = self.log_dir(arn, "talker")
        with open(os.path.join(logs, "stdout")) as out:
            self.assertEqual(out.read(), "override too\n")

    def test_a_server_restart_leaves_tasks_running(self):
        family = self.register([{"name": "main", "entryPoint": ["sh", "-c"],
                                 "command": ["trap 'exit 143' TERM; sleep 60 & wait"]}])
        [arn] = self.run_task(family)
        runtime_id = self.container(self.wait_status("prod", arn, "RUNNING"), "main")["runtimeId"]
        self.server.stop()
        time.sleep(2)  # the agent is cut off meanwhile, and keeps its task
        self.server.start()
        task = self.describe(arn)
        self.assertEqual(task["lastStatus"], "RUNNING")
        self.assertEqual(self.container(task, "main")["runtimeId"], runtime_id)
        # The agent reconnected: a StopTask reaches it.
        self.ecs.stop_task(cluster="prod", task=arn)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(self.container(task, "main")["exitCode"], 143)

    def test_a_task_a_restored_server_does_not_know_is_stopped_by_the_agent(self):
        # The server's data is put back from a copy taken before RunTask (a restore from a
        # backup): the agent, re-syncing with it, must stop the task the server no longer has.
        family = self.register([{"name": "main", "entryPoint": ["sh", "-c"],
                                 "command": ["trap 'echo stopped; exit 143' TERM; "
                                             "sleep 60 & wait"]}])
        self.server.stop()
        before = tempfile.mkdtemp(prefix="wharf-e2e-before-")
        self.addCleanup(shutil.rmtree, before, True)
        shutil.copytree(self.server.data_dir, before, dirs_exist_ok=True)
        self.server.start()
        self.agent.wait_registered()
        [arn] = self.run_task(family)
        runtime_id = self.container(self.wait_status("prod", arn, "RUNNING"), "main")["runtimeId"]
        self.assertTrue(any(runtime_id in name for name in netns_names()))
        self.server.kill9()
        shutil.rmtree(self.server.data_dir)
        shutil.copytree(before, self.server.data_dir)
        self.server.start()
        self.wait_for(lambda: not any(runtime_id in name for name in netns_names()),
                      "the agent to stop the task the server no longer has", timeout=30)
        with open(os.path.join(self.log_dir(arn, "main"), "stdout")) as out:
            self.assertEqual(out.read(), "stopped\n")
        self.assertEqual([f["reason"] for f in
                          self.ecs.describe_tasks(cluster="prod", tasks=[arn])["failures"]],
                         ["MISSING"])

    def test_bridge_mode_publishes_a_dynamic_port(self):
        family = self.register([{
            "name": "web", "entryPoint": ["sh", "-c"],
            "command": ["mkdir -p /www && echo hello from $(hostname) > /www/index.html && "
                        "exec httpd -f -p 80 -h /www"],
            "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]}],
            network_mode="bridge")
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "RUNNING")
        [binding] = self.container(task, "web")["networkBindings"]
        self.assertEqual(binding["containerPort"], 80)
        self.assertEqual(binding["protocol"], "tcp")
        self.assertGreaterEqual(binding["hostPort"], 49153)
        body = self.wait_for(lambda: http_get(f"http://127.0.0.1:{binding['hostPort']}/"),
                             "the container's web server", timeout=10)
        self.assertTrue(body.startswith("hello from"), body)
        instance = self.ecs.describe_container_instances(
            cluster="prod", containerInstances=[self.instance_arn])["containerInstances"][0]
        ports = next(resource for resource in instance["remainingResources"]
                     if resource["name"] == "PORTS")["stringSetValue"]
        self.assertIn(str(binding["hostPort"]), ports)
        self.ecs.stop_task(cluster="prod", task=arn)
        self.wait_status("prod", arn, "STOPPED")
        self.assertIsNone(http_get(f"http://127.0.0.1:{binding['hostPort']}/"))

    def test_a_container_port_range_is_published_as_a_host_port_range(self):
        family = self.register([{
            "name": "web", "entryPoint": ["sh", "-c"],
            "command": ["mkdir /www; echo ranged > /www/index.html; exec httpd -f -p 8001 -h /www"],
            "portMappings": [{"containerPortRange": "8000-8002", "protocol": "tcp"}]}],
            network_mode="bridge")
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "RUNNING")
        [binding] = self.container(task, "web")["networkBindings"]
        self.assertEqual(binding["containerPortRange"], "8000-8002")
        low, high = (int(port) for port in binding["hostPortRange"].split("-"))
        self.assertEqual(high - low, 2)
        body = self.wait_for(lambda: http_get(f"http://127.0.0.1:{low + 1}/"), "port 8001",
                             timeout=10)
        self.assertEqual(body, "ranged\n")

    def test_a_taken_static_host_port_is_not_placed_again(self):
        family = self.register([{
            "name": "web", "entryPoint": ["sh", "-c"], "command": ["exec httpd -f -p 80"],
            "portMappings": [{"containerPort": 80, "hostPort": 18080}]}], network_mode="bridge")
        [arn] = self.run_task(family)
        self.wait_status("prod", arn, "RUNNING")
        answer = self.ecs.run_task(cluster="prod", taskDefinition=family)
        self.assertEqual(answer["tasks"], [])
        self.assertEqual([failure["reason"] for failure in answer["failures"]], ["RESOURCE:PORTS"])

    def test_bridge_endpoints_are_released_after_an_agent_crash(self):
        family = self.register([{
            "name": "web", "entryPoint": ["sh", "-c"], "command": ["exec httpd -f -p 80"],
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}], network_mode="bridge")
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "RUNNING")
        host_port = self.container(task, "web")["networkBindings"][0]["hostPort"]
        runtime_id = self.container(task, "web")["runtimeId"]
        self.assertTrue(any(runtime_id in name for name in netns_names()))
        self.agent.kill9()
        self.ecs.stop_task(cluster="prod", task=arn)  # while no agent listens
        self.agent.start()
        self.agent.wait_registered()
        self.wait_status("prod", arn, "STOPPED")
        # The restarted agent stopped the task and released everything it held for it.
        self.assertFalse(any(runtime_id in name for name in netns_names()))
        self.assertNotIn(f"{host_port}", nft_ruleset())
        self.assertIsNone(http_get(f"http://127.0.0.1:{host_port}/"))

    def test_a_stopped_agent_with_no_tasks_leaves_no_network_or_mount_behind(self):
        self.ecs.create_cluster(clusterName="net")
        agent = WharfAgent(self.server, "net", extra_args=AGENT_ARGS)
        self.addCleanup(agent.cleanup)
        agent.start()
        agent.wait_registered()
        suffix = agent.instance_id()[-10:]
        self.wait_for(lambda: os.path.exists(f"/sys/class/net/wharf{suffix}"), "the bridge")
        family = self.register([{
            "name": "web", "entryPoint": ["sh", "-c"], "command": ["exec httpd -f -p 80"],
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}], network_mode="bridge")
        [arn] = self.run_task(family, cluster="net")
        self.wait_status("net", arn, "RUNNING")
        # The bundle lives as long as the container, on a tmpfs, whatever /run is on.
        run_dir = os.path.join("/run/wharf", agent.instance_id())
        bundle = os.path.join(run_dir, "containers", arn.rsplit("/", 1)[1], "web", "bundle")
        self.assertTrue(os.path.exists(os.path.join(bundle, "config.json")))
        self.assertEqual(file_system_type(bundle), "tmpfs")
        self.ecs.stop_task(cluster="net", task=arn)
        self.wait_status("net", arn, "STOPPED")
        self.assertFalse(os.path.exists(bundle))
        agent.stop()
        self.assertFalse(os.path.exists(run_dir))
        self.assertNotIn(f" {run_dir} ", read_or_empty("/proc/self/mountinfo"))
        self.assertFalse(os.path.exists(f"/sys/class/net/wharf{suffix}"))
        self.assertFalse([name for name in netns_names() if name.startswith(f"wharf-{suffix}")])
        self.assertNotIn(f"wharf_{suffix}", nft_ruleset())
        self.assertNotIn(f"wharf{suffix}", links())

    def test_an_agent_that_cannot_start_its_engine_leaves_no_mount_behind(self):
        self.ecs.create_cluster(clusterName="broken")
        agent = WharfAgent(self.server, "broken", extra_args=["--runtime", "nosuch"])
        self.addCleanup(agent.cleanup)
        agent.start()
        self.assertNotEqual(agent.process.wait(timeout=30), 0)
        self.assertIn("nosuch", agent.log())
        run_dir = os.path.join("/run/wharf", agent.instance_id())
        self.assertNotIn(f" {run_dir} ", read_or_empty("/proc/self/mountinfo"))
        self.assertFalse(os.path.exists(run_dir))

    def test_the_metadata_endpoint_in_bridge_mode(self):
        task, seen = self.metadata_seen_from_inside("bridge")
        container, stats = self.check_metadata(task, seen)
        self.assertEqual(container["Networks"][0]["NetworkMode"], "bridge")
        self.assertEqual(len(container["Networks"][0]["IPv4Addresses"]), 1)
        self.assertGreater(stats["networks"]["eth0"]["rx_bytes"], 0)
        # Only a container's own token is answered; anything else is 404.
        uri = urllib.parse.urlsplit(seen[4])
        self.assertTrue(uri.path.startswith("/v4/"), seen[4])
        for path in ("/v4/0123456789abcdef0123456789abcdef", "/v4/", "/v5/x", uri.path + "/x"):
            with self.assertRaises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(f"http://127.0.0.1:{uri.port}{path}", timeout=5)
            self.assertEqual(caught.exception.code, 404, path)

    def test_the_metadata_endpoint_in_host_mode(self):
        task, seen = self.metadata_seen_from_inside("host")
        container, _ = self.check_metadata(task, seen)
        self.assertEqual(container["Networks"][0]["NetworkMode"], "host")

    def test_the_metadata_endpoint_in_none_mode(self):
        # No network but loopback: the agent serves ECS's address inside the namespace.
        task, seen = self.metadata_seen_from_inside("none")
        container, _ = self.check_metadata(task, seen)
        self.assertEqual(container["Networks"][0]["NetworkMode"], "none")
        self.assertTrue(seen[4].startswith("http://169.254.170.2:"), seen[4])


def file_system_type(path):
    """The type of the file system `path` is on, as stat -f names it (tmpfs, ext2/ext3, …)."""
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def netns_names():
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.split()]


def links():
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def nft_ruleset():
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def http_get(url):
    """The body at `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


@unittest.skipIf(needs_root_and_runc(), needs_root_and_runc())
class PlacementTest(AgentTestCase):
    """Two agents in one cluster: spread, memberOf, draining."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.second = WharfAgent(cls.server, "prod",
                                extra_args=[*AGENT_ARGS, "--availability-zone", "us-east-1b"])
        cls.addClassCleanup(cls.second.cleanup)
        cls.second.start()
        cls.second_arn = cls.second.wait_registered()

    def test_spread_member_of_and_draining(self):
        family = self.register([{"name": "main", "entryPoint": ["sh", "-c"],
                                 "command": ["sleep 60"]}])
        arns = self.run_task(family, count=4, placementStrategy=[
            {"type": "spread", "field": "attribute:ecs.availability-zone"}])
        tasks = self.ecs.describe_tasks(cluster="prod", tasks=arns)["tasks"]
        per_instance = {}
        for task in tasks:
            per_instance[task["containerInstanceArn"]] = per_instance.get(
                task["containerInstanceArn"], 0) + 1
        self.assertEqual(per_instance, {self.instance_arn: 2, self.second_arn: 2})
        for arn in arns:
            self.wait_status("prod", arn, "RUNNING")

        [pinned] = self.run_task(family, placementConstraints=[
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1b"}])
        self.assertEqual(self.describe(pinned)["containerInstanceArn"], self.second_arn)

        self.ecs.update_container_instances_state(cluster="prod",
                                                  containerInstances=[self.second_arn],
                                                  status="DRAINING")
        try:
            drained = self.run_task(family, count=3)
            for arn in drained:
                self.assertEqual(self.describe(arn)["containerInstanceArn"], self.instance_arn)
        finally:
            self.ecs.update_container_instances_state(cluster="prod",
                                                      containerInstances=[self.second_arn],
                                                      status="ACTIVE")


@unittest.skipIf(needs_root_and_runc(), needs_root_and_runc())
class UpTest(unittest.TestCase):
    """`wharf up`: a server and, as root, one agent in the "default" cluster."""

    def test_up_runs_a_server_and_an_agent(self):
        data_dir = tempfile.mkdtemp(prefix="wharf-e2e-up-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        self.addCleanup(purge_agent_data, os.path.join(data_dir, "agent"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen([WHARF, "--log-level", "warn", "up", "--listen",
                                    f"127.0.0.1:{port}", "--data-dir", data_dir],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def stop():
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            process.stdout.close()
            process.stderr.close()
        self.addCleanup(stop)
        exports = {}
        for line in process.stdout:
            match = re.match(r"\s*export (AWS_[A-Z_]+)=(\S+)", line)
            if match:
                exports[match.group(1)] = match.group(2)
            if "AWS_ENDPOINT_URL" in exports:
                break
        ecs = boto3.client("ecs", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name=REGION,
                           aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"])
        deadline = time.time() + 30
        while time.time() < deadline:
            arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
            if arns:
                break
            time.sleep(0.1)
        self.assertEqual(len(arns), 1, "wharf up registered no agent")
        instance = ecs.describe_container_instances(
            cluster="default", containerInstances=arns)["containerInstances"][0]
        self.assertTrue(instance["agentConnected"])

        # And it runs tasks: an image imported into its registry, a bridge task, its port.
        session = dict(AWS_ACCESS_KEY_ID=exports["AWS_ACCESS_KEY_ID"],
                       AWS_SECRET_ACCESS_KEY=exports["AWS_SECRET_ACCESS_KEY"],
                       AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
                       AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        boto3.client("ecr", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name=REGION,
                     aws_access_key_id=session["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=session["AWS_SECRET_ACCESS_KEY"]
                     ).create_repository(repositoryName="busybox")
        image = f"127.0.0.1:{port}/busybox:latest"
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        env.update(session)
        subprocess.run([WHARF, "image", "import", make_busybox_rootfs(
            os.path.join(data_dir, "rootfs")), image], env=env, check=True, capture_output=True)
        ecs.register_task_definition(family="hello", networkMode="bridge", containerDefinitions=[{
            "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
            "command": ["mkdir /www; echo hello > /www/index.html; exec httpd -f -p 80 -h /www"],
            "stopTimeout": 2,  # httpd as PID 1 ignores SIGTERM: SIGKILL after 2 s, not 30
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}])
        [task] = ecs.run_task(cluster="default", taskDefinition="hello")["tasks"]
        deadline = time.time() + 30
        while time.time() < deadline:
            task = ecs.describe_tasks(cluster="default", tasks=[task["taskArn"]])["tasks"][0]
            if task["lastStatus"] in ("RUNNING", "STOPPED"):
                break
            time.sleep(0.1)
        self.assertEqual(task["lastStatus"], "RUNNING", task)
        host_port = task["containers"][0]["networkBindings"][0]["hostPort"]
        self.assertEqual(http_get(f"http://127.0.0.1:{host_port}/"), "hello\n")
        ecs.stop_task(cluster="default", task=task["taskArn"])
        deadline = time.time() + 30
        while time.time() < deadline:
            task = ecs.describe_tasks(cluster="default", tasks=[task["taskArn"]])["tasks"][0]
            if task["lastStatus"] == "STOPPED":
                break
            time.sleep(0.1)
        self.assertEqual(task["lastStatus"], "STOPPED")


if __name__ == "__main__":
    unittest.main()
