"""Tasks that use Secrets Manager, SSM Parameter Store and S3: repositoryCredentials pull an image
from a registry that wants a password (Debian's docker-registry with htpasswd auth), container
`secrets` (secrets and parameters) become environment variables, and so do environmentFiles read
from S3. A real server, a real agent (as root, under runc), the aws CLI's shapes through boto3."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import warnings

from harness import ACCOUNT, REGION, WHARF
from test_image_client import DockerRegistry
from test_tasks import AgentTestCase, make_busybox_rootfs, needs_root_and_runc

USER, PASSWORD = "alice", "s3cret-Registry-9"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"


def bcrypt_htpasswd(path, user, password):
    """An htpasswd file for docker-registry, which accepts only bcrypt hashes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    with open(path, "w") as file:
        file.write(f"{user}:{hashed}\n")


def missing_prerequisite():
    reason = needs_root_and_runc()
    if reason:
        return reason
    if shutil.which("docker-registry") is None:
        return "needs docker-registry"
    return None


@unittest.skipIf(missing_prerequisite(), missing_prerequisite())
class TaskSecretsTest(AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sm = cls.server.client("secretsmanager")
        cls.private_dir = tempfile.mkdtemp(prefix="wharf-e2e-private-")
        cls.addClassCleanup(shutil.rmtree, cls.private_dir, True)
        htpasswd = os.path.join(cls.private_dir, "htpasswd")
        bcrypt_htpasswd(htpasswd, USER, PASSWORD)
        cls.registry = DockerRegistry(auth={"htpasswd": {"realm": "e2e", "path": htpasswd}})
        cls.addClassCleanup(cls.registry.stop)
        cls.registry.start()
        rootfs = make_busybox_rootfs(os.path.join(cls.private_dir, "rootfs"))
        cls.private_image = f"{cls.registry.host}/private/busybox:1"
        # Never pulled with credentials, so never in the agent's cache either: the agent's
        # default pull behaviour falls back to a cached image when a pull fails, as ECS's does.
        cls.unpulled_image = f"{cls.registry.host}/private/unpulled:1"
        cls.by_name_image = f"{cls.registry.host}/private/by-name:1"
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
        for image, cmd in ((cls.private_image, "sh"), (cls.unpulled_image, "true"),
                           (cls.by_name_image, "false")):
            subprocess.run([WHARF, "image", "import", rootfs, image, "--cmd", cmd,
                            "--username", USER, "--password-stdin"], input=PASSWORD + "\n",
                           env=env, text=True, check=True, capture_output=True, timeout=120)

    def registry_credentials_secret(self, name, value):
        return self.sm.create_secret(Name=name, SecretString=value)["ARN"]

    def private_task(self, credentials_parameter=None, image=None):
        container = {"name": "main", "image": image or self.private_image,
                     "entryPoint": ["sh", "-c"], "command": ["echo pulled with a password"]}
        if credentials_parameter:
            container["repositoryCredentials"] = {"credentialsParameter": credentials_parameter}
        return self.register([container], executionRoleArn=EXECUTION_ROLE)

    def test_repository_credentials_pull_a_private_image(self):
        arn = self.registry_credentials_secret(
            "registry/alice", json.dumps({"username": USER, "password": PASSWORD}))
        # By ARN, as ECS users write it, and by name.
        self.assertEqual(self.output_of_run(self.private_task(arn), "main"),
                         "pulled with a password\n")
        # A different image, so that the pull cannot fall back to a cached one.
        self.assertEqual(self.output_of_run(
            self.private_task("registry/alice", image=self.by_name_image), "main"),
            "pulled with a password\n")

        # The agent advertises the capability, so the server places such tasks on it.
        attributes = self.ecs.describe_container_instances(
            cluster="prod", containerInstances=[self.instance_arn])["containerInstances"][0]
        names = [attribute["name"] for attribute in attributes["attributes"]]
        self.assertIn("com.amazonaws.ecs.capability.private-registry-authentication."
                      "secretsmanager", names)

    def test_without_credentials_the_pull_is_refused(self):
        [arn] = self.run_task(self.private_task(image=self.unpulled_image))
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("CannotPullContainerError", task["stoppedReason"])
        self.assertIn("401", task["stoppedReason"])

    def test_a_missing_or_malformed_credentials_secret_says_why(self):
        [arn] = self.run_task(self.private_task(
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:registry/nobody"))
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("ResourceInitializationError", task["stoppedReason"])
        self.assertIn("unable to retrieve secret from asm", task["stoppedReason"])
        self.assertIn("ResourceNotFoundException", task["stoppedReason"])

        self.registry_credentials_secret("registry/not-json", "alice:" + PASSWORD)
        [arn] = self.run_task(self.private_task("registry/not-json"))
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("username", task["stoppedReason"])
        self.assertNotIn(PASSWORD, json.dumps(task, default=str))

    def test_secrets_become_environment_variables(self):
        token_arn = self.sm.create_secret(Name="app/token", SecretString="tok-123")["ARN"]
        db_arn = self.sm.create_secret(
            Name="app/db", SecretString=json.dumps({"user": "app", "password": "hunter2"}))["ARN"]
        self.sm.put_secret_value(SecretId="app/db",
                                 SecretString=json.dumps({"user": "app", "password": "newer"}))
        family = self.register(
            [{"name": "main", "entryPoint": ["sh", "-c"],
              "command": ['echo "$TOKEN $DB_PASSWORD $OLD_PASSWORD $PLAIN"'],
              "environment": [{"name": "PLAIN", "value": "visible"}],
              "secrets": [
                  {"name": "TOKEN", "valueFrom": token_arn},
                  # A JSON key of the current version, and of the version before it.
                  {"name": "DB_PASSWORD", "valueFrom": db_arn + ":password::"},
                  {"name": "OLD_PASSWORD", "valueFrom": db_arn + ":password:AWSPREVIOUS:"}]}],
            executionRoleArn=EXECUTION_ROLE)
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(self.container(task, "main")["exitCode"], 0, task)
        with open(os.path.join(self.log_dir(arn, "main"), "stdout")) as out:
            self.assertEqual(out.read(), "tok-123 newer hunter2 visible\n")

        # The values reach the container only: neither the task as the server describes it nor
        # the agent's saved state holds them.
        self.assertNotIn("hunter2", json.dumps(task, default=str))
        for directory, subdirectories, files in os.walk(self.agent.data_dir):
            subdirectories[:] = [name for name in subdirectories if name != "logs"]
            for name in files:
                with open(os.path.join(directory, name), "rb") as file:
                    self.assertNotIn(b"hunter2", file.read(), os.path.join(directory, name))

    def test_a_secret_that_cannot_be_read_stops_the_task(self):
        family = self.register(
            [{"name": "main", "entryPoint": ["true"],
              "secrets": [{"name": "GONE", "valueFrom":
                           f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/nothing"}]}],
            executionRoleArn=EXECUTION_ROLE)
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("ResourceInitializationError: unable to pull secrets or registry auth",
                      task["stoppedReason"])
        self.assertIn("app/nothing", task["stoppedReason"])


    def test_ssm_parameters_and_environment_files_join_the_environment(self):
        ssm = self.server.client("ssm")
        ssm.put_parameter(Name="/app/db/password", Value="param-pw", Type="SecureString")
        ssm.put_parameter(Name="app-mode", Value="plain", Type="String")
        s3 = self.server.client("s3")
        s3.create_bucket(Bucket="app-config")
        s3.put_object(Bucket="app-config", Key="base.env",
                      Body=b"# defaults\nFROM_FILE=base\nSHADOWED=file\nSPACED=a b=c\n")
        s3.put_object(Bucket="app-config", Key="prod/web.env",
                      Body=b"FROM_FILE=prod\nSECOND=prod\n")
        family = self.register(
            [{"name": "main", "entryPoint": ["sh", "-c"],
              "command": ['echo "$FROM_FILE|$SECOND|$SHADOWED|$SPACED|$DB_PASSWORD|$MODE"'],
              "environment": [{"name": "SHADOWED", "value": "environment"}],
              "environmentFiles": [
                  {"type": "s3", "value": "arn:aws:s3:::app-config/base.env"},
                  {"type": "s3", "value": "arn:aws:s3:::app-config/prod/web.env"}],
              "secrets": [
                  {"name": "DB_PASSWORD", "valueFrom":
                   f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/db/password"},
                  {"name": "MODE", "valueFrom": "app-mode"}]}],
            executionRoleArn=EXECUTION_ROLE)
        # The first file to set a variable wins; `environment` wins over the files.
        self.assertEqual(self.output_of_run(family, "main"),
                         "base|prod|environment|a b=c|param-pw|plain\n")

        attributes = self.ecs.describe_container_instances(
            cluster="prod", containerInstances=[self.instance_arn])["containerInstances"][0]
        names = [attribute["name"] for attribute in attributes["attributes"]]
        self.assertIn("ecs.capability.env-files.s3", names)
        self.assertIn("ecs.capability.secrets.ssm.environment-variables", names)

    def test_a_missing_environment_file_or_parameter_stops_the_task(self):
        self.server.client("s3").create_bucket(Bucket="empty-config")
        family = self.register(
            [{"name": "main", "entryPoint": ["true"],
              "environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::empty-config/gone.env"}]}],
            executionRoleArn=EXECUTION_ROLE)
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("ResourceInitializationError: failed to download env files: "
                      "s3://empty-config/gone.env", task["stoppedReason"])
        self.assertIn("NoSuchKey", task["stoppedReason"])

        family = self.register(
            [{"name": "main", "entryPoint": ["true"],
              "secrets": [{"name": "GONE", "valueFrom": "/app/nothing"}]}],
            executionRoleArn=EXECUTION_ROLE)
        [arn] = self.run_task(family)
        task = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertIn("unable to retrieve secrets from ssm", task["stoppedReason"])
        self.assertIn("/app/nothing", task["stoppedReason"])

if __name__ == "__main__":
    unittest.main()
