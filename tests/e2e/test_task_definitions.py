"""Task definitions against a real server: register (aws CLI and boto3), describe, list,
deregister, delete, and the ClientExceptions ECS gives for bad definitions."""

import concurrent.futures
import copy
import json
import os
import tempfile
import unittest

from harness import ACCOUNT, REGION, WharfTestCase

# The definition from the issue, verbatim.
FARGATE_DEFINITION = {
    "family": "my-task-family",
    "containerDefinitions": [{
        "name": "my-container",
        "image": "nginx:latest",
        "cpu": 256,
        "memory": 512,
        "essential": True,
        "portMappings": [{"containerPort": 80, "hostPort": 80}],
        "environment": [{"name": "ENV_VAR", "value": "value"}],
    }],
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
}

EC2_DEFINITION = {
    "family": "web-and-db",
    "networkMode": "bridge",
    "requiresCompatibilities": ["EC2"],
    "containerDefinitions": [
        {
            "name": "db",
            "image": "postgres:16",
            "memory": 512,
            "essential": True,
            "environment": [{"name": "POSTGRES_PASSWORD", "value": "secret"}],
            "healthCheck": {"command": ["CMD-SHELL", "pg_isready -U postgres"], "interval": 10,
                            "timeout": 3, "retries": 5, "startPeriod": 15},
        },
        {
            "name": "migrate",
            "image": "example/migrate:1.2",
            "memory": 128,
            "essential": False,
            "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
        },
        {
            "name": "web",
            "image": "nginx:1.27",
            "cpu": 128,
            "memory": 256,
            "essential": True,
            "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
            "dependsOn": [{"containerName": "db", "condition": "HEALTHY"},
                          {"containerName": "migrate", "condition": "SUCCESS"}],
            "healthCheck": {"command": ["CMD", "curl", "-f", "http://localhost/"]},
        },
    ],
}


def definition_arn(family, revision, region=REGION):
    return f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{family}:{revision}"


def simple_definition(family, image="busybox:latest"):
    return {"family": family,
            "containerDefinitions": [{"name": "main", "image": image, "memory": 64}]}


class TaskDefinitionTest(WharfTestCase):

    def register(self, definition, ecs=None):
        return (ecs or self.ecs).register_task_definition(**definition)["taskDefinition"]

    def assertMatchesFargateDefinition(self, described, revision):
        self.assertEqual(described["taskDefinitionArn"], definition_arn("my-task-family", revision))
        self.assertEqual(described["family"], "my-task-family")
        self.assertEqual(described["revision"], revision)
        self.assertEqual(described["status"], "ACTIVE")
        self.assertEqual(described["networkMode"], "awsvpc")
        self.assertEqual(described["cpu"], "256")
        self.assertEqual(described["memory"], "512")
        self.assertEqual(described["requiresCompatibilities"], ["FARGATE"])
        self.assertIn("FARGATE", described["compatibilities"])
        self.assertIn("registeredAt", described)
        self.assertEqual(described["registeredBy"], f"arn:aws:iam::{ACCOUNT}:root")
        [container] = described["containerDefinitions"]
        self.assertEqual(container["name"], "my-container")
        self.assertEqual(container["image"], "nginx:latest")
        self.assertEqual(container["cpu"], 256)
        self.assertEqual(container["memory"], 512)
        self.assertIs(container["essential"], True)
        self.assertEqual(container["environment"], [{"name": "ENV_VAR", "value": "value"}])
        [mapping] = container["portMappings"]
        self.assertEqual(mapping["containerPort"], 80)
        self.assertEqual(mapping["hostPort"], 80)
        self.assertEqual(mapping.get("protocol", "tcp"), "tcp")

    def test_register_issue_definition_with_cli_and_boto3(self):
        with tempfile.TemporaryDirectory(prefix="wharf-e2e-cli-") as scratch:
            path = os.path.join(scratch, "task-definition.json")
            with open(path, "w") as out:
                json.dump(FARGATE_DEFINITION, out)
            first = self.server.aws("ecs", "register-task-definition",
                                    "--cli-input-json", f"file://{path}")["taskDefinition"]
        self.assertMatchesFargateDefinition(first, 1)
        second = self.register(FARGATE_DEFINITION)
        self.assertMatchesFargateDefinition(second, 2)
        # Both readers see the same thing.
        described = self.ecs.describe_task_definition(
            taskDefinition="my-task-family:1")["taskDefinition"]
        self.assertMatchesFargateDefinition(described, 1)
        from_cli = self.server.aws("ecs", "describe-task-definition", "--task-definition",
                                   "my-task-family")["taskDefinition"]
        self.assertMatchesFargateDefinition(from_cli, 2)

    def test_multi_container_ec2_definition(self):
        registered = self.register(EC2_DEFINITION)
        self.assertEqual(registered["taskDefinitionArn"], definition_arn("web-and-db", 1))
        self.assertIn("EC2", registered["compatibilities"])
        described = self.ecs.describe_task_definition(
            taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]
        containers = {c["name"]: c for c in described["containerDefinitions"]}
        self.assertEqual(set(containers), {"db", "migrate", "web"})
        self.assertEqual(containers["web"]["dependsOn"],
                         [{"containerName": "db", "condition": "HEALTHY"},
                          {"containerName": "migrate", "condition": "SUCCESS"}])
        self.assertEqual(containers["migrate"]["dependsOn"],
                         [{"containerName": "db", "condition": "HEALTHY"}])
        self.assertIs(containers["migrate"]["essential"], False)
        db_check = containers["db"]["healthCheck"]
        self.assertEqual(db_check["command"], ["CMD-SHELL", "pg_isready -U postgres"])
        self.assertEqual((db_check["interval"], db_check["timeout"], db_check["retries"],
                          db_check["startPeriod"]), (10, 3, 5, 15))
        web_check = containers["web"]["healthCheck"]
        self.assertEqual(web_check["command"], ["CMD", "curl", "-f", "http://localhost/"])
        # ECS fills in the documented defaults.
        self.assertEqual((web_check["interval"], web_check["timeout"], web_check["retries"]),
                         (30, 5, 3))
        self.assertEqual(containers["web"]["portMappings"],
                         [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}])

    def test_revisions_count_up(self):
        revisions = [self.register(simple_definition("counting"))["revision"] for _ in range(3)]
        self.assertEqual(revisions, [1, 2, 3])

    def test_concurrent_registrations_get_distinct_revisions(self):
        def register_many(count):
            ecs = self.server.client()
            return [self.register(simple_definition("contended"), ecs)["revision"]
                    for _ in range(count)]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            batches = list(pool.map(register_many, [10] * 8))
        revisions = sorted(revision for batch in batches for revision in batch)
        self.assertEqual(revisions, list(range(1, 81)))

    def test_fargate_cpu_and_memory_units_are_normalised(self):
        definition = copy.deepcopy(FARGATE_DEFINITION)
        definition.update(family="units", cpu="1 vCPU", memory="2 GB")
        registered = self.register(definition)
        self.assertEqual((registered["cpu"], registered["memory"]), ("1024", "2048"))
        described = self.ecs.describe_task_definition(taskDefinition="units")["taskDefinition"]
        self.assertEqual((described["cpu"], described["memory"]), ("1024", "2048"))

    def test_describe_by_family_revision_and_arn(self):
        for image in ("busybox:1", "busybox:2", "busybox:3"):
            self.register(simple_definition("lookup", image))

        def image_of(identifier):
            described = self.ecs.describe_task_definition(taskDefinition=identifier)
            return described["taskDefinition"]["containerDefinitions"][0]["image"]

        self.assertEqual(image_of("lookup"), "busybox:3")
        self.assertEqual(image_of("lookup:2"), "busybox:2")
        self.assertEqual(image_of(definition_arn("lookup", 1)), "busybox:1")
        # A bare family means the latest ACTIVE revision.
        self.ecs.deregister_task_definition(taskDefinition="lookup:3")
        self.assertEqual(image_of("lookup"), "busybox:2")
        self.assertEqual(image_of("lookup:3"), "busybox:3")

    def test_describe_unknown_is_client_exception(self):
        self.assertAwsError(
            lambda: self.ecs.describe_task_definition(taskDefinition="never-registered"),
            "ClientException")
        self.register(simple_definition("one-revision"))
        self.assertAwsError(
            lambda: self.ecs.describe_task_definition(taskDefinition="one-revision:7"),
            "ClientException")

    def test_describe_includes_tags_on_request(self):
        self.ecs.register_task_definition(**simple_definition("tagged-def"),
                                          tags=[{"key": "owner", "value": "me"}])
        plain = self.ecs.describe_task_definition(taskDefinition="tagged-def")
        self.assertEqual(plain.get("tags", []), [])
        with_tags = self.ecs.describe_task_definition(taskDefinition="tagged-def",
                                                      include=["TAGS"])
        self.assertEqual(with_tags["tags"], [{"key": "owner", "value": "me"}])

    def test_list_task_definitions(self):
        ecs = self.server.client(region="eu-north-1")  # own region: exact listings
        for family in ("alpha", "beta"):
            for _ in range(3):
                self.register(simple_definition(family), ecs)
        ecs.deregister_task_definition(taskDefinition="alpha:2")

        everything = ecs.list_task_definitions()["taskDefinitionArns"]
        self.assertEqual(everything, [
            definition_arn("alpha", 1, "eu-north-1"), definition_arn("alpha", 3, "eu-north-1"),
            definition_arn("beta", 1, "eu-north-1"), definition_arn("beta", 2, "eu-north-1"),
            definition_arn("beta", 3, "eu-north-1")])
        alpha = ecs.list_task_definitions(familyPrefix="alpha")["taskDefinitionArns"]
        self.assertEqual(alpha, [definition_arn("alpha", 1, "eu-north-1"),
                                 definition_arn("alpha", 3, "eu-north-1")])
        inactive = ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]
        self.assertEqual(inactive, [definition_arn("alpha", 2, "eu-north-1")])
        newest_first = ecs.list_task_definitions(familyPrefix="beta",
                                                 sort="DESC")["taskDefinitionArns"]
        self.assertEqual(newest_first, [definition_arn("beta", 3, "eu-north-1"),
                                        definition_arn("beta", 2, "eu-north-1"),
                                        definition_arn("beta", 1, "eu-north-1")])

        for sort in ("ASC", "DESC"):
            seen, kwargs = [], {"maxResults": 2, "sort": sort}
            while True:
                page = ecs.list_task_definitions(**kwargs)
                self.assertLessEqual(len(page["taskDefinitionArns"]), 2)
                seen.extend(page["taskDefinitionArns"])
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            self.assertEqual(seen, everything if sort == "ASC" else everything[::-1])

    def test_list_task_definition_families(self):
        ecs = self.server.client(region="eu-south-1")
        for family in ("svc-api", "svc-worker", "batch-report"):
            self.register(simple_definition(family), ecs)
        ecs.deregister_task_definition(taskDefinition="svc-worker:1")

        self.assertEqual(ecs.list_task_definition_families()["families"],
                         ["batch-report", "svc-api", "svc-worker"])
        self.assertEqual(ecs.list_task_definition_families(familyPrefix="svc")["families"],
                         ["svc-api", "svc-worker"])
        self.assertEqual(ecs.list_task_definition_families(status="ACTIVE")["families"],
                         ["batch-report", "svc-api"])
        self.assertEqual(ecs.list_task_definition_families(status="INACTIVE")["families"],
                         ["svc-worker"])
        self.assertEqual(ecs.list_task_definition_families(status="ALL",
                                                           familyPrefix="svc-w")["families"],
                         ["svc-worker"])
        self.assertEqual(ecs.list_task_definition_families(familyPrefix="zzz")["families"], [])

    def test_deregister(self):
        registered = self.register(simple_definition("retiring"))
        deregistered = self.ecs.deregister_task_definition(
            taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]
        self.assertEqual(deregistered["status"], "INACTIVE")
        self.assertIn("deregisteredAt", deregistered)
        described = self.ecs.describe_task_definition(
            taskDefinition="retiring:1")["taskDefinition"]
        self.assertEqual(described["status"], "INACTIVE")
        self.assertEqual(described["containerDefinitions"][0]["image"], "busybox:latest")
        # No ACTIVE revision left, so the bare family names nothing.
        self.assertAwsError(lambda: self.ecs.describe_task_definition(taskDefinition="retiring"),
                            "ClientException")
        # Deregistration needs a revision.
        self.register(simple_definition("retiring"))
        self.assertAwsError(
            lambda: self.ecs.deregister_task_definition(taskDefinition="retiring"),
            ("ClientException", "InvalidParameterException"))
        self.assertAwsError(
            lambda: self.ecs.deregister_task_definition(taskDefinition="retiring:99"),
            ("ClientException", "InvalidParameterException"))

    def test_delete_task_definitions(self):
        ecs = self.server.client(region="ca-central-1")
        for _ in range(2):
            self.register(simple_definition("deleting"), ecs)
        ecs.deregister_task_definition(taskDefinition="deleting:1")
        response = ecs.delete_task_definitions(
            taskDefinitions=["deleting:1", "deleting:2"])
        [deleted] = response["taskDefinitions"]
        self.assertEqual(deleted["taskDefinitionArn"],
                         definition_arn("deleting", 1, "ca-central-1"))
        self.assertEqual(deleted["status"], "DELETE_IN_PROGRESS")
        [failure] = response["failures"]
        self.assertEqual(failure["arn"], definition_arn("deleting", 2, "ca-central-1"))
        self.assertTrue(failure.get("reason"))

        described = ecs.describe_task_definition(taskDefinition="deleting:1")["taskDefinition"]
        self.assertEqual(described["status"], "DELETE_IN_PROGRESS")
        self.assertEqual(ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"], [])
        self.assertEqual(ecs.list_task_definitions(status="DELETE_IN_PROGRESS")[
            "taskDefinitionArns"], [definition_arn("deleting", 1, "ca-central-1")])
        self.assertEqual(ecs.list_task_definitions()["taskDefinitionArns"],
                         [definition_arn("deleting", 2, "ca-central-1")])
        # Unknown revisions are failures too, not errors.
        response = ecs.delete_task_definitions(taskDefinitions=["deleting:42"])
        self.assertEqual(response["taskDefinitions"], [])
        self.assertEqual(len(response["failures"]), 1)
        # More than 10 at once is refused.
        self.assertAwsError(lambda: ecs.delete_task_definitions(
            taskDefinitions=[f"deleting:{revision}" for revision in range(1, 12)]),
            ("InvalidParameterException", "ClientException"))

    def test_bad_definitions_are_client_exceptions(self):
        def fargate(cpu, memory):
            definition = copy.deepcopy(FARGATE_DEFINITION)
            definition.update(family="bad-fargate", cpu=cpu, memory=memory)
            return definition

        def ec2_with(containers):
            return {"family": "bad-ec2", "containerDefinitions": containers}

        cases = {
            "fargate cpu/memory combination": fargate("256", "4096"),
            "fargate cpu not a Fargate size": fargate("300", "512"),
            "fargate without task cpu": {k: v for k, v in FARGATE_DEFINITION.items()
                                         if k != "cpu"},
            "missing image": ec2_with([{"name": "noimage", "memory": 64}]),
            "empty image": ec2_with([{"name": "emptyimage", "image": "", "memory": 64}]),
            "dependsOn cycle": ec2_with([
                {"name": "a", "image": "busybox", "memory": 64,
                 "dependsOn": [{"containerName": "b", "condition": "START"}]},
                {"name": "b", "image": "busybox", "memory": 64,
                 "dependsOn": [{"containerName": "a", "condition": "START"}]}]),
            "dependsOn unknown container": ec2_with([
                {"name": "a", "image": "busybox", "memory": 64,
                 "dependsOn": [{"containerName": "ghost", "condition": "START"}]}]),
            "duplicate container names": ec2_with([
                {"name": "same", "image": "busybox", "memory": 64},
                {"name": "same", "image": "busybox", "memory": 64}]),
            "no memory anywhere on EC2": ec2_with([{"name": "a", "image": "busybox"}]),
            "empty family": {"family": "", "containerDefinitions": [
                {"name": "a", "image": "busybox", "memory": 64}]},
        }
        for name, definition in cases.items():
            with self.subTest(name):
                self.assertAwsError(lambda: self.ecs.register_task_definition(**definition),
                                    "ClientException")
        # None of them left a family behind.
        families = self.ecs.list_task_definition_families()["families"]
        self.assertNotIn("bad-fargate", families)
        self.assertNotIn("bad-ec2", families)


if __name__ == "__main__":
    unittest.main()
