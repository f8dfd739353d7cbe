"""Durability: a clean restart keeps everything, and neither SIGTERM nor `kill -9` in the middle
of a burst of concurrent registrations loses an acknowledged revision."""

import collections
import concurrent.futures
import sys
import threading
import unittest

from botocore.exceptions import BotoCoreError, ClientError

from harness import ACCOUNT, WharfServer

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
CONFIGURATION = {"executeCommandConfiguration": {"logging": "DEFAULT"}}


def without_metadata(response):
    """The response minus what legitimately differs between two identical calls: request ids,
    and nextToken values, which carry their issue time (only whether there is one counts)."""
    response = dict(response)
    response.pop("ResponseMetadata", None)
    if "nextToken" in response:
        response["nextToken"] = bool(response["nextToken"])
    return response


class DurabilityTestCase(unittest.TestCase):
    """Each test gets a server of its own, since each one stops and starts it."""

    def setUp(self):
        self.server = WharfServer()
        self.addCleanup(self.server.cleanup)
        self.server.start()


class RestartTest(DurabilityTestCase):

    def populate(self):
        ecs = self.server.client()
        west = self.server.client(region="eu-west-1")
        ecs.create_cluster(clusterName="kept", configuration=CONFIGURATION,
                           settings=[{"name": "containerInsights", "value": "enabled"}],
                           tags=[{"key": "team", "value": "core"}])
        ecs.create_cluster(clusterName="gone")
        ecs.delete_cluster(cluster="gone")
        west.create_cluster(clusterName="west-only")
        for image in ("nginx:1", "nginx:2", "nginx:3", "nginx:4"):
            ecs.register_task_definition(
                family="web", tags=[{"key": "image", "value": image}],
                requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                memory="512", containerDefinitions=[{
                    "name": "web", "image": image, "essential": True,
                    "portMappings": [{"containerPort": 80}],
                    "environment": [{"name": "IMAGE", "value": image}],
                    "healthCheck": {"command": ["CMD", "true"]}}])
        ecs.tag_resource(resourceArn=self.web_arn(1), tags=[{"key": "added", "value": "later"}])
        ecs.deregister_task_definition(taskDefinition="web:2")
        ecs.delete_task_definitions(taskDefinitions=["web:2"])
        ecs.deregister_task_definition(taskDefinition="web:3")
        west.register_task_definition(
            family="west-family",
            containerDefinitions=[{"name": "a", "image": "busybox", "memory": 64}])
        for index in range(5):
            ecs.register_task_definition(
                family=f"many-{index}",
                containerDefinitions=[{"name": "a", "image": "busybox", "memory": 64}])
        ecs.put_account_setting(name="serviceLongArnFormat", value="disabled")
        ecs.put_account_setting(name="taskLongArnFormat", value="disabled", principalArn=ALICE)
        ecs.put_account_setting_default(name="containerInsights", value="enhanced")
        ecs.put_account_setting(name="awsvpcTrunking", value="enabled")
        ecs.delete_account_setting(name="awsvpcTrunking")

    @staticmethod
    def web_arn(revision):
        return f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/web:{revision}"

    def snapshot(self):
        ecs = self.server.client()
        west = self.server.client(region="eu-west-1")
        everything = ["TAGS", "SETTINGS", "STATISTICS", "CONFIGURATIONS"]
        state = {
            "clusters": ecs.describe_clusters(clusters=["kept", "gone", "west-only"],
                                              include=everything),
            "west clusters": west.describe_clusters(clusters=["west-only", "kept"],
                                                    include=everything),
            "cluster list": ecs.list_clusters(),
            "west cluster list": west.list_clusters(),
            "families": ecs.list_task_definition_families(),
            "west families": west.list_task_definition_families(),
            "cluster tags": ecs.list_tags_for_resource(
                resourceArn=f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/kept"),
            "settings": ecs.list_account_settings(),
            "alice settings": ecs.list_account_settings(principalArn=ALICE),
            "effective settings": ecs.list_account_settings(effectiveSettings=True,
                                                            maxResults=10),
            "default insights": ecs.list_account_settings(name="containerInsights",
                                                          effectiveSettings=True,
                                                          principalArn=ALICE),
        }
        for status in ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"):
            state[f"{status} revisions"] = ecs.list_task_definitions(status=status)
        for revision in range(1, 5):
            state[f"web:{revision}"] = ecs.describe_task_definition(
                taskDefinition=f"web:{revision}", include=["TAGS"])
        state["web"] = ecs.describe_task_definition(taskDefinition="web")
        return {name: without_metadata(response) for name, response in state.items()}

    def test_restart_keeps_everything(self):
        self.populate()
        ecs = self.server.client()
        token = ecs.list_task_definition_families(maxResults=2)["nextToken"]
        second_page = ecs.list_task_definition_families(maxResults=2, nextToken=token)
        before = self.snapshot()
        self.assertEqual([c["status"] for c in before["clusters"]["clusters"]],
                         ["ACTIVE", "INACTIVE"])
        self.assertEqual(before["web"]["taskDefinition"]["revision"], 4)

        self.server.restart()
        after = self.snapshot()
        for name in before:
            with self.subTest(name):
                self.assertEqual(after[name], before[name])

        ecs = self.server.client()
        # Work carries on where it stopped: the next revision, the same cluster, old tokens.
        registered = ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "a", "image": "busybox", "memory": 64}])
        self.assertEqual(registered["taskDefinition"]["revision"], 5)
        again = ecs.create_cluster(clusterName="kept")["cluster"]
        self.assertEqual(again["clusterArn"], f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/kept")
        self.assertEqual(without_metadata(
            ecs.list_task_definition_families(maxResults=2, nextToken=token)),
            without_metadata(second_page))

    def test_restart_twice_with_changes_between(self):
        ecs = self.server.client()
        ecs.create_cluster(clusterName="one")
        self.server.restart()
        ecs = self.server.client()
        ecs.delete_cluster(cluster="one")
        ecs.create_cluster(clusterName="two")
        self.server.restart()
        ecs = self.server.client()
        described = ecs.describe_clusters(clusters=["one", "two"])["clusters"]
        self.assertEqual({c["clusterName"]: c["status"] for c in described},
                         {"one": "INACTIVE", "two": "ACTIVE"})


class CrashTest(DurabilityTestCase):
    WORKERS = 32
    FAMILIES = 20

    def burst(self, requests, stop_after, stop):
        """Sends `requests` concurrent RegisterTaskDefinition calls and calls `stop` once
        `stop_after` of them are acknowledged; returns [(request index, ARN)] of the acks."""
        acked = []
        acked_lock = threading.Lock()
        enough = threading.Event()
        local = threading.local()
        unanswered = collections.Counter()

        def register(index):
            if not hasattr(local, "ecs"):
                local.ecs = self.server.client()
            try:
                response = local.ecs.register_task_definition(
                    family=f"burst-{index % self.FAMILIES}",
                    containerDefinitions=[{
                        "name": "main", "image": f"busybox:{index}", "memory": 64,
                        "environment": [{"name": "REQUEST", "value": str(index)}]}])
            except (BotoCoreError, ClientError) as error:
                with acked_lock:
                    unanswered[type(error).__name__] += 1
                return
            with acked_lock:
                acked.append((index, response["taskDefinition"]["taskDefinitionArn"]))
                if len(acked) >= stop_after:
                    enough.set()

        with concurrent.futures.ThreadPoolExecutor(self.WORKERS) as pool:
            futures = [pool.submit(register, index) for index in range(requests)]
            self.assertTrue(enough.wait(timeout=240), f"too few acks: {len(acked)} {unanswered}")
            stop()
            for future in futures:
                future.result()
        with acked_lock:
            acked = list(acked)
        print(f"\n  stopped after {len(acked)} acknowledged registrations; unanswered: "
              f"{dict(unanswered)}", file=sys.stderr)
        self.assertGreaterEqual(len(acked), stop_after)
        self.assertLess(len(acked), requests, "every request finished before the stop")
        arns = [arn for _, arn in acked]
        self.assertEqual(len(arns), len(set(arns)), "one revision acknowledged twice")
        return acked

    def check_acknowledged(self, acked):
        """Every acknowledged revision is there with its own content after a restart."""
        local = threading.local()

        def describe(entry):
            if not hasattr(local, "ecs"):
                local.ecs = self.server.client()
            index, arn = entry
            return index, arn, local.ecs.describe_task_definition(
                taskDefinition=arn)["taskDefinition"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(describe, acked))
        for index, arn, definition in results:
            with self.subTest(arn=arn):
                self.assertEqual(definition["taskDefinitionArn"], arn)
                self.assertEqual(definition["family"], f"burst-{index % self.FAMILIES}")
                self.assertEqual(definition["status"], "ACTIVE")
                [container] = definition["containerDefinitions"]
                self.assertEqual(container["image"], f"busybox:{index}")
                self.assertEqual(container["environment"],
                                 [{"name": "REQUEST", "value": str(index)}])

        # Listings agree, and no acknowledged revision number is handed out again.
        ecs = self.server.client()
        highest = collections.defaultdict(int)
        for _, arn in acked:
            family, revision = arn.rsplit("/", 1)[1].split(":")
            highest[family] = max(highest[family], int(revision))
        listed = set()
        for page in ecs.get_paginator("list_task_definitions").paginate():
            listed.update(page["taskDefinitionArns"])
        missing = {arn for _, arn in acked} - listed
        self.assertFalse(missing, "acknowledged but not listed")
        for family, revision in highest.items():
            fresh = ecs.register_task_definition(
                family=family,
                containerDefinitions=[{"name": "main", "image": "busybox", "memory": 64}])
            self.assertGreater(fresh["taskDefinition"]["revision"], revision, family)

    def test_kill9_during_concurrent_registrations(self):
        acked = self.burst(1000, 500, self.server.kill9)
        self.server.start()
        self.check_acknowledged(acked)

    def test_sigterm_during_concurrent_registrations(self):
        exit_status = []
        acked = self.burst(300, 150, lambda: exit_status.append(self.server.stop()))
        self.assertEqual(exit_status, [0], "wharf did not exit cleanly on SIGTERM:\n" +
                         self.server.log())
        self.server.start()
        self.check_acknowledged(acked)


if __name__ == "__main__":
    unittest.main()
