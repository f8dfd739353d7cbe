"""Container instances against a real server and real `wharf agent` processes: registration,
describe/list (status and cluster query filters), draining, attributes, agent restarts and
crashes (agentConnected), and cluster deletion while instances are registered."""

import os
import time
import unittest
import unittest.mock

from harness import ACCOUNT, REGION, WharfAgent, WharfServer, WharfTestCase

# The server expects a call every second and reports an agent disconnected after three silent
# seconds; the agents call in every second.
HEARTBEAT_ARGS = ["--agent-heartbeat-seconds", "1"]
AGENT_HEARTBEAT = ["--heartbeat-seconds", "1"]
RESERVED_PORTS = ["22", "2375", "2376", "51678", "51679"]


def cgroup2_mount():
    """(mount point, per-mount options, hierarchy options) of the host's cgroup2 mount, or None:
    the conventional mount point first, as the agent picks it."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields, tail = line.split(" - ")
            fields, tail = fields.split(), tail.split()
            if tail[0] == "cgroup2":
                found.append((fields[4], fields[5].split(","), tail[2].split(",")))
    found.sort(key=lambda mount: mount[0] not in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"))
    return found[0] if found else None


def resources_by_name(resources):
    return {resource["name"]: resource for resource in resources}


def attributes_by_name(attributes):
    return {attribute["name"]: attribute.get("value") for attribute in attributes}


class ContainerInstanceTest(WharfTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = WharfServer(extra_args=HEARTBEAT_ARGS)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.ecs = cls.server.client()

    def start_agent(self, cluster, zone="us-east-1a", extra_args=(), data_dir=None,
                    log_level="warn"):
        agent = WharfAgent(self.server, cluster, data_dir=data_dir, log_level=log_level,
                           extra_args=["--availability-zone", zone, *AGENT_HEARTBEAT,
                                       *extra_args])
        self.addCleanup(agent.cleanup)
        agent.start()
        return agent

    def list_arns(self, cluster, *args):
        return self.server.aws("ecs", "list-container-instances", "--cluster", cluster,
                               *args)["containerInstanceArns"]

    def describe(self, cluster, arns, *args):
        return self.server.aws("ecs", "describe-container-instances", "--cluster", cluster,
                               "--container-instances", *arns, *args)

    def wait_for(self, predicate, what, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def test_two_agents_register_and_are_described(self):
        self.ecs.create_cluster(clusterName="fleet")
        first = self.start_agent("fleet", "us-east-1a", ["--instance-type", "t3.small"])
        second = self.start_agent("fleet", "us-east-1b", ["--memory-reserve-mib", "512"])
        arns = {first.wait_registered(), second.wait_registered()}
        self.assertEqual(len(arns), 2, "each agent must be its own instance")
        for arn in arns:
            self.assertRegex(
                arn, rf"^arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/fleet/[0-9a-f]{{32}}$")
        self.assertEqual(set(self.list_arns("fleet")), arns)

        described = self.describe("fleet", sorted(arns), "--include", "TAGS")
        self.assertEqual(described["failures"], [])
        instances = {instance["containerInstanceArn"]: instance
                     for instance in described["containerInstances"]}
        self.assertEqual(set(instances), arns)
        memory = {}
        for arn, instance in instances.items():
            self.assertEqual(instance["status"], "ACTIVE")
            self.assertTrue(instance["agentConnected"])
            self.assertEqual(instance["runningTasksCount"], 0)
            self.assertEqual(instance["pendingTasksCount"], 0)
            self.assertEqual(instance["versionInfo"]["agentVersion"], "0.1.0")
            self.assertRegex(instance["ec2InstanceId"], r"^i-[0-9a-f]{17}$")
            self.assertIn("registeredAt", instance)
            registered = resources_by_name(instance["registeredResources"])
            self.assertEqual(set(registered), {"CPU", "MEMORY", "PORTS", "PORTS_UDP"})
            self.assertEqual(registered["CPU"]["type"], "INTEGER")
            # 1024 units a usable core, fewer under a cgroup CPU quota.
            self.assertGreater(registered["CPU"]["integerValue"], 0)
            self.assertLessEqual(registered["CPU"]["integerValue"], os.cpu_count() * 1024)
            self.assertGreater(registered["MEMORY"]["integerValue"], 0)
            self.assertEqual(sorted(registered["PORTS"]["stringSetValue"]),
                             sorted(RESERVED_PORTS))
            self.assertEqual(registered["PORTS_UDP"]["stringSetValue"], [])
            self.assertEqual(instance["remainingResources"], instance["registeredResources"])
            memory[arn] = registered["MEMORY"]["integerValue"]
            attributes = attributes_by_name(instance["attributes"])
            self.assertEqual(attributes["ecs.os-type"], "linux")
            self.assertIn(attributes["ecs.cpu-architecture"], ("x86_64", "arm64"))
            self.assertEqual(instance["tags"], [])
        first_instance = instances[first.saved_arn()]
        second_instance = instances[second.saved_arn()]
        self.assertEqual(attributes_by_name(first_instance["attributes"])["ecs.instance-type"],
                         "t3.small")
        self.assertEqual(
            attributes_by_name(second_instance["attributes"])["ecs.availability-zone"],
            "us-east-1b")
        # Same host, same MemTotal: the larger reserve leaves 256 MiB less.
        self.assertEqual(memory[first.saved_arn()] - memory[second.saved_arn()], 256)
        self.assertNotEqual(first_instance["ec2InstanceId"], second_instance["ec2InstanceId"])

        cluster = self.ecs.describe_clusters(clusters=["fleet"])["clusters"][0]
        self.assertEqual(cluster["registeredContainerInstancesCount"], 2)

        # The cluster query language picks instances by attribute.
        self.assertEqual(
            self.list_arns("fleet", "--filter", "attribute:ecs.availability-zone == us-east-1b"),
            [second.saved_arn()])
        self.assertEqual(
            self.list_arns("fleet", "--filter",
                           "attribute:ecs.instance-type =~ t3.* and agentConnected == true"),
            [first.saved_arn()])
        self.assertAwsError(
            lambda: self.ecs.list_container_instances(cluster="fleet", filter="attribute:x equal y"),
            "InvalidParameterException", message="position")

        # Paging: one instance per page, both in the end.
        page = self.ecs.list_container_instances(cluster="fleet", maxResults=1)
        rest = self.ecs.list_container_instances(cluster="fleet", maxResults=1,
                                                 nextToken=page["nextToken"])
        self.assertEqual(set(page["containerInstanceArns"] + rest["containerInstanceArns"]), arns)

        # An unknown instance is a failure, not an error.
        missing = self.describe("fleet", ["0" * 32])
        self.assertEqual(missing["failures"][0]["reason"], "MISSING")

    def test_draining_and_attributes(self):
        self.ecs.create_cluster(clusterName="drains")
        arns = [self.start_agent("drains").wait_registered(),
                self.start_agent("drains").wait_registered()]
        updated = self.server.aws("ecs", "update-container-instances-state", "--cluster",
                                  "drains", "--container-instances", arns[0], "0" * 32,
                                  "--status", "DRAINING")
        self.assertEqual([i["status"] for i in updated["containerInstances"]], ["DRAINING"])
        self.assertEqual(updated["failures"][0]["reason"], "MISSING")
        self.assertEqual(self.list_arns("drains", "--status", "DRAINING"), [arns[0]])
        self.assertEqual(self.list_arns("drains", "--status", "ACTIVE"), [arns[1]])
        self.assertEqual(set(self.list_arns("drains")), set(arns))
        self.assertEqual(
            self.describe("drains", [arns[0]])["containerInstances"][0]["status"], "DRAINING")
        self.assertAwsError(
            lambda: self.ecs.update_container_instances_state(
                cluster="drains", containerInstances=[arns[0]], status="REGISTERING"),
            "InvalidParameterException")

        # PutAttributes by ARN and by id; ListAttributes by name and value.
        instance_id = arns[1].rsplit("/", 1)[1]
        self.server.aws("ecs", "put-attributes", "--cluster", "drains", "--attributes",
                        f"name=stack,value=blue,targetId={arns[0]}",
                        f"name=stack,value=green,targetId={instance_id},"
                        "targetType=container-instance",
                        f"name=gpu-ready,targetId={arns[1]}")
        listed = self.server.aws("ecs", "list-attributes", "--cluster", "drains",
                                 "--target-type", "container-instance",
                                 "--attribute-name", "stack")["attributes"]
        self.assertEqual(sorted((a["targetId"], a["value"]) for a in listed),
                         sorted([(arns[0], "blue"), (arns[1], "green")]))
        green = self.server.aws("ecs", "list-attributes", "--cluster", "drains", "--target-type",
                                "container-instance", "--attribute-name", "stack",
                                "--attribute-value", "green")["attributes"]
        self.assertEqual([a["targetId"] for a in green], [arns[1]])
        self.assertEqual(
            self.list_arns("drains", "--filter", "attribute:stack == green"), [arns[1]])
        self.assertEqual(
            self.list_arns("drains", "--filter", "attribute:gpu-ready exists"), [arns[1]])

        self.server.aws("ecs", "delete-attributes", "--cluster", "drains", "--attributes",
                        f"name=gpu-ready,targetId={arns[1]}")
        self.assertEqual(
            self.list_arns("drains", "--filter", "attribute:gpu-ready exists"), [])

        # Limits and rules from the ECS documentation.
        self.assertAwsError(
            lambda: self.ecs.put_attributes(cluster="drains", attributes=[
                {"name": f"custom{idx}", "targetId": arns[0]} for idx in range(10)]),
            "AttributeLimitExceededException")  # with "stack", eleven custom attributes
        self.assertAwsError(
            lambda: self.ecs.put_attributes(cluster="drains", attributes=[
                {"name": "bad name", "targetId": arns[0]}]),
            "InvalidParameterException")
        self.assertAwsError(
            lambda: self.ecs.put_attributes(cluster="drains", attributes=[
                {"name": "ecs.instance-type", "value": "fake", "targetId": arns[0]}]),
            "InvalidParameterException")
        self.assertAwsError(
            lambda: self.ecs.put_attributes(cluster="drains", attributes=[
                {"name": "ok", "targetId": "0" * 32, "targetType": "container-instance"}]),
            "TargetNotFoundException")

    def test_restart_keeps_the_instance_and_a_killed_agent_disconnects(self):
        self.ecs.create_cluster(clusterName="restarts")
        steady = self.start_agent("restarts")
        restarted = self.start_agent("restarts")
        steady_arn = steady.wait_registered()
        arn = restarted.wait_registered()
        self.assertEqual(restarted.stop(), 0, restarted.log())  # SIGTERM ends it cleanly

        again = self.start_agent("restarts", data_dir=restarted.data_dir)
        self.wait_for(lambda: self.describe("restarts", [arn])["containerInstances"][0]
                      ["version"] > 1, "re-registration")
        self.assertEqual(again.saved_arn(), arn)
        self.assertEqual(set(self.list_arns("restarts")), {steady_arn, arn})

        # Two agents cannot share a data directory.
        clash = WharfAgent(self.server, "restarts", data_dir=restarted.data_dir)
        self.addCleanup(clash.cleanup)
        clash.start()
        self.assertEqual(clash.wait_exit(), 1)
        self.assertIn("another agent", clash.log())
        os.truncate(clash.log_path, 0)  # an expected complaint; keep it out of the test output

        again.kill9()
        started = time.time()
        self.wait_for(lambda: not self.describe("restarts", [arn])["containerInstances"][0]
                      ["agentConnected"], "agentConnected false", timeout=10)
        self.assertLess(time.time() - started, 8)
        self.assertEqual(self.list_arns("restarts", "--filter", "agentConnected == false"), [arn])
        # The other agent keeps calling in.
        self.assertTrue(
            self.describe("restarts", [steady_arn])["containerInstances"][0]["agentConnected"])

        # It comes back as the same instance, connected again.
        self.start_agent("restarts", data_dir=restarted.data_dir)
        self.wait_for(lambda: self.describe("restarts", [arn])["containerInstances"][0]
                      ["agentConnected"], "agentConnected true again")
        self.assertEqual(set(self.list_arns("restarts")), {steady_arn, arn})

    def test_the_agent_runs_without_malloc_thread_caches(self):
        # glibc's per-thread caches of freed memory cost the agent megabytes with hundreds of
        # runner threads; the agent executes itself again with them turned off (same pid).
        self.ecs.create_cluster(clusterName="malloc")

        def started_with(agent, name=b"GLIBC_TUNABLES"):
            with open("/proc/%d/environ" % agent.pid, "rb") as environ:
                for entry in environ.read().split(b"\0"):
                    if entry.startswith(name + b"="):
                        return entry.split(b"=", 1)[1].decode()
            return None

        with unittest.mock.patch.dict(os.environ):
            os.environ.pop("GLIBC_TUNABLES", None)
            plain = self.start_agent("malloc")
        plain.wait_registered()
        self.assertEqual(started_with(plain), "glibc.malloc.tcache_count=0")
        # The same second start keeps GnuTLS (loaded with libcurl, unused) from setting itself up.
        self.assertEqual(started_with(plain, b"GNUTLS_NO_IMPLICIT_INIT"), "1")
        with open("/proc/%d/comm" % plain.pid) as comm:
            self.assertEqual(comm.read().strip(), "wharf")  # its name, not "exe"

        # Other tunables are kept after it (glibc 2.36 cuts what /proc shows at the first
        # tunable's end); a tcache setting of the caller's wins.
        with unittest.mock.patch.dict(os.environ, GLIBC_TUNABLES="glibc.malloc.trim_threshold=1"):
            other = self.start_agent("malloc")
        other.wait_registered()
        self.assertTrue(started_with(other).startswith("glibc.malloc.tcache_count=0"), started_with(other))
        with unittest.mock.patch.dict(os.environ, GLIBC_TUNABLES="glibc.malloc.tcache_count=3"):
            chosen = self.start_agent("malloc")
        chosen.wait_registered()
        self.assertEqual(started_with(chosen), "glibc.malloc.tcache_count=3")

    def test_the_agent_turns_on_cgroup_favordynmods(self):
        # Moving a container's init into its cgroups waits for an RCU grace period (5-20 ms here)
        # unless the cgroup2 hierarchy has favordynmods; the agent turns it on at start, keeping
        # the mount's other options, unless told not to. Other tests' agents run meanwhile and
        # turn it on too, so this checks the result and the agent's own account of it (the unit
        # test CgroupFavorDynmods.TurnsItOnOnThisHost remounts).
        mount = cgroup2_mount()
        if mount is None:
            self.skipTest("no cgroup2 mount on this host")
        point, mount_options, options = mount
        self.ecs.create_cluster(clusterName="dynmods")

        kept = self.start_agent("dynmods", extra_args=["--no-cgroup-favordynmods"],
                                log_level="info")
        kept.wait_registered()
        self.wait_for(lambda: "running containers with" in kept.log(), "the agent's engine")
        self.assertIn("leaving the cgroup2 mount's options as they are", kept.log())
        self.assertNotIn("favordynmods on " + point, kept.log())

        agent = self.start_agent("dynmods", log_level="info")
        agent.wait_registered()
        self.wait_for(lambda: "running containers with" in agent.log(), "the agent's engine")
        if "this kernel has no cgroup favordynmods" in agent.log():
            self.skipTest("this kernel has no favordynmods")
        self.assertTrue("turned on favordynmods on " + point in agent.log()
                        or "favordynmods is on already on " + point in agent.log(), agent.log())
        self.assertIn("favordynmods", cgroup2_mount()[2])
        # Nothing else about the mount changed.
        self.assertEqual(cgroup2_mount()[1], mount_options)
        self.assertEqual([option for option in cgroup2_mount()[2] if option != "favordynmods"],
                         [option for option in options if option != "favordynmods"])

    def test_cluster_with_instances_is_deleted_only_after_deregistration(self):
        self.ecs.create_cluster(clusterName="doomed")
        agents = [self.start_agent("doomed"), self.start_agent("doomed")]
        arns = [agent.wait_registered() for agent in agents]
        self.assertAwsError(lambda: self.ecs.delete_cluster(cluster="doomed"),
                            "ClusterContainsContainerInstancesException")
        self.ecs.update_container_instances_state(cluster="doomed", containerInstances=[arns[0]],
                                                  status="DRAINING")
        self.ecs.deregister_container_instance(cluster="doomed", containerInstance=arns[1])
        self.assertAwsError(lambda: self.ecs.delete_cluster(cluster="doomed"),
                            "ClusterContainsContainerInstancesException")
        deregistered = self.server.aws("ecs", "deregister-container-instance", "--cluster",
                                       "doomed", "--container-instance", arns[0], "--force")
        self.assertEqual(deregistered["containerInstance"]["status"], "INACTIVE")
        described = self.describe("doomed", arns)["containerInstances"]
        self.assertEqual([i["status"] for i in described], ["INACTIVE", "INACTIVE"])
        self.assertEqual(self.list_arns("doomed"), [])
        self.assertEqual(
            self.ecs.delete_cluster(cluster="doomed")["cluster"]["status"], "INACTIVE")

        # A deregistered instance's agent is told so when it calls in, and stops.
        for agent in agents:
            self.assertEqual(agent.wait_exit(timeout=15), 1)
            self.assertIn("deregistered", agent.log())
            os.truncate(agent.log_path, 0)

    def test_registration_needs_an_active_cluster_and_valid_resources(self):
        def register(**overrides):
            request = {"cluster": "nowhere", "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 512}]}
            request.update(overrides)
            return self.ecs.register_container_instance(**request)

        self.assertAwsError(register, "ClusterNotFoundException")
        self.ecs.create_cluster(clusterName="strict")
        self.assertAwsError(lambda: register(cluster="strict", totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": 1024}]),
            "InvalidParameterException", message="MEMORY")
        arn = register(cluster="strict", tags=[{"key": "team", "value": "infra"}])[
            "containerInstance"]["containerInstanceArn"]
        described = self.ecs.describe_container_instances(
            cluster="strict", containerInstances=[arn], include=["TAGS"])
        self.assertEqual(described["containerInstances"][0]["tags"],
                         [{"key": "team", "value": "infra"}])
        self.ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "test"}])
        self.assertEqual(len(self.ecs.list_tags_for_resource(resourceArn=arn)["tags"]), 2)
        self.assertAwsError(lambda: register(cluster="strict", containerInstanceArn=arn.replace(
            arn.rsplit("/", 1)[1], "f" * 32)), "InvalidParameterException")


if __name__ == "__main__":
    unittest.main()
