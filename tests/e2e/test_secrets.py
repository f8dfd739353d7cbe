"""Secrets Manager: the aws CLI and boto3 against a real `wharf server` — secrets, versions and
staging labels, scheduled deletion, listing, and durability across a kill -9."""

import base64
import signal
import unittest

from harness import ACCOUNT, REGION, WharfTestCase


class SecretsTest(WharfTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sm = cls.server.client("secretsmanager")

    def test_cli_create_get_rotate_and_describe(self):
        created = self.server.aws("secretsmanager", "create-secret", "--name", "cli/db",
                                  "--description", "database login",
                                  "--secret-string", '{"username":"app","password":"one"}')
        self.assertRegex(created["ARN"],
                         rf"^arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cli/db-\w{{6}}$")
        first_version = created["VersionId"]  # the CLI sends a ClientRequestToken of its own

        got = self.server.aws("secretsmanager", "get-secret-value", "--secret-id", "cli/db")
        self.assertEqual(got["SecretString"], '{"username":"app","password":"one"}')
        self.assertEqual(got["VersionStages"], ["AWSCURRENT"])

        self.server.aws("secretsmanager", "put-secret-value", "--secret-id", created["ARN"],
                        "--secret-string", '{"username":"app","password":"two"}')
        current = self.server.aws("secretsmanager", "get-secret-value", "--secret-id", "cli/db")
        self.assertIn('"two"', current["SecretString"])
        previous = self.server.aws("secretsmanager", "get-secret-value", "--secret-id", "cli/db",
                                   "--version-stage", "AWSPREVIOUS")
        self.assertEqual(previous["VersionId"], first_version)

        described = self.server.aws("secretsmanager", "describe-secret", "--secret-id",
                                    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cli/db")
        self.assertEqual(described["Description"], "database login")
        self.assertEqual(sorted(described["VersionIdsToStages"].values()),
                         [["AWSCURRENT"], ["AWSPREVIOUS"]])
        self.assertIn("LastAccessedDate", described)

        listed = self.server.aws("secretsmanager", "list-secrets", "--filters",
                                 "Key=name,Values=cli/")
        self.assertEqual([entry["Name"] for entry in listed["SecretList"]], ["cli/db"])

    def test_errors_have_secrets_managers_names(self):
        self.assertAwsError(lambda: self.sm.get_secret_value(SecretId="no/such"),
                            "ResourceNotFoundException",
                            message="can't find the specified secret")
        self.sm.create_secret(Name="err/dup", SecretString="x")
        self.assertAwsError(lambda: self.sm.create_secret(Name="err/dup", SecretString="y"),
                            "ResourceExistsException", message="already exists")
        self.assertAwsError(lambda: self.sm.create_secret(Name="err bad", SecretString="y"),
                            "InvalidParameterException", message="may contain only")
        self.assertAwsError(
            lambda: self.sm.delete_secret(SecretId="err/dup", RecoveryWindowInDays=2),
            "InvalidParameterException", message="between 7 and 30 days")
        self.assertAwsError(lambda: self.sm.list_secrets(NextToken="forged"),
                            "InvalidNextTokenException")
        # The CLI's own check that a value was given is bypassed by a raw request.
        raw = self.server.signed_request("PutSecretValue", b'{"SecretId":"err/dup"}',
                                         target="secretsmanager.PutSecretValue",
                                         service="secretsmanager")
        self.assertRawError(raw, "InvalidParameterException",
                            message="either SecretString or SecretBinary")

    def test_scheduled_deletion_and_restore(self):
        self.sm.create_secret(Name="del/me", SecretString="x")
        deleted = self.sm.delete_secret(SecretId="del/me", RecoveryWindowInDays=7)
        self.assertIn("DeletionDate", deleted)
        self.assertAwsError(lambda: self.sm.get_secret_value(SecretId="del/me"),
                            "InvalidRequestException", message="marked for deletion")
        self.assertNotIn("del/me", [s["Name"] for s in self.sm.list_secrets()["SecretList"]])
        planned = self.sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]
        self.assertIn("del/me", [s["Name"] for s in planned])
        self.sm.restore_secret(SecretId="del/me")
        self.assertEqual(self.sm.get_secret_value(SecretId="del/me")["SecretString"], "x")
        self.sm.delete_secret(SecretId="del/me", ForceDeleteWithoutRecovery=True)
        self.assertAwsError(lambda: self.sm.describe_secret(SecretId="del/me"),
                            "ResourceNotFoundException")

    def test_binary_secret_and_random_password(self):
        self.sm.create_secret(Name="bin/key", SecretBinary=b"\x00\x01\xfe")
        self.assertEqual(self.sm.get_secret_value(SecretId="bin/key")["SecretBinary"],
                         b"\x00\x01\xfe")
        password = self.server.aws("secretsmanager", "get-random-password", "--password-length",
                                   "24", "--exclude-punctuation")["RandomPassword"]
        self.assertEqual(len(password), 24)
        self.assertTrue(password.isalnum(), password)


class SecretsDurabilityTest(WharfTestCase):

    def test_acknowledged_secrets_survive_kill_9(self):
        sm = self.server.client("secretsmanager")
        sm.create_secret(Name="durable/one", SecretString="v1",
                         Tags=[{"Key": "team", "Value": "web"}])
        sm.put_secret_value(SecretId="durable/one", SecretString="v2")
        sm.create_secret(Name="durable/gone", SecretString="x")
        sm.delete_secret(SecretId="durable/gone", ForceDeleteWithoutRecovery=True)
        self.server.stop(signal.SIGKILL)
        self.server.start()
        sm = self.server.client("secretsmanager")
        self.assertEqual(sm.get_secret_value(SecretId="durable/one")["SecretString"], "v2")
        self.assertEqual(sm.get_secret_value(SecretId="durable/one",
                                             VersionStage="AWSPREVIOUS")["SecretString"], "v1")
        self.assertEqual(sm.describe_secret(SecretId="durable/one")["Tags"],
                         [{"Key": "team", "Value": "web"}])
        self.assertAwsError(lambda: sm.get_secret_value(SecretId="durable/gone"),
                            "ResourceNotFoundException")


if __name__ == "__main__":
    unittest.main()
