"""SSM Parameter Store: the aws CLI and boto3 against a real `wharf server` — parameters,
versions and labels, SecureStrings, hierarchical listing with paginators, errors, and durability
across a kill -9."""

import base64
import signal
import unittest

from harness import ACCOUNT, REGION, WharfTestCase


class ParameterStoreTest(WharfTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ssm = cls.server.client("ssm")

    def test_cli_put_get_label_history_and_delete(self):
        put = self.server.aws("ssm", "put-parameter", "--name", "/cli/db/host", "--type",
                              "String", "--value", "db-1.internal", "--description", "db host")
        self.assertEqual(put, {"Version": 1, "Tier": "Standard"})
        self.server.aws("ssm", "put-parameter", "--name", "/cli/db/host", "--value",
                        "db-2.internal", "--overwrite")
        got = self.server.aws("ssm", "get-parameter", "--name", "/cli/db/host")["Parameter"]
        self.assertEqual(got["Value"], "db-2.internal")
        self.assertEqual(got["Version"], 2)
        self.assertEqual(got["ARN"], f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/cli/db/host")

        labelled = self.server.aws("ssm", "label-parameter-version", "--name", "/cli/db/host",
                                   "--parameter-version", "1", "--labels", "blue", "9bad")
        self.assertEqual(labelled["InvalidLabels"], ["9bad"])
        by_label = self.server.aws("ssm", "get-parameter", "--name", "/cli/db/host:blue")
        self.assertEqual(by_label["Parameter"]["Value"], "db-1.internal")
        self.assertEqual(by_label["Parameter"]["Selector"], ":blue")

        self.server.aws("ssm", "put-parameter", "--name", "/cli/db/password", "--type",
                        "SecureString", "--value", "hunter2")
        several = self.server.aws("ssm", "get-parameters", "--names", "/cli/db/host",
                                  "/cli/db/password", "/cli/nope", "--with-decryption")
        self.assertEqual({p["Name"]: p["Value"] for p in several["Parameters"]},
                         {"/cli/db/host": "db-2.internal", "/cli/db/password": "hunter2"})
        self.assertEqual(several["InvalidParameters"], ["/cli/nope"])

        by_path = self.server.aws("ssm", "get-parameters-by-path", "--path", "/cli",
                                  "--recursive")
        self.assertEqual(sorted(p["Name"] for p in by_path["Parameters"]),
                         ["/cli/db/host", "/cli/db/password"])
        self.assertNotIn("hunter2", [p["Value"] for p in by_path["Parameters"]])

        described = self.server.aws("ssm", "describe-parameters", "--parameter-filters",
                                    "Key=Type,Values=SecureString", "Key=Path,Option=Recursive,"
                                    "Values=/cli")
        self.assertEqual([p["Name"] for p in described["Parameters"]], ["/cli/db/password"])
        self.assertEqual(described["Parameters"][0]["KeyId"], "alias/aws/ssm")

        history = self.server.aws("ssm", "get-parameter-history", "--name", "/cli/db/host")
        self.assertEqual([(p["Version"], p["Value"], p["Labels"]) for p in history["Parameters"]],
                         [(1, "db-1.internal", ["blue"]), (2, "db-2.internal", [])])

        self.server.aws("ssm", "delete-parameter", "--name", "/cli/db/host")
        missing = self.server.aws("ssm", "get-parameter", "--name", "/cli/db/host", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("ParameterNotFound", missing.stderr)

    def test_secure_string_needs_with_decryption(self):
        self.ssm.put_parameter(Name="/prod/db/password", Type="SecureString", Value="s3cret",
                               KeyId="alias/app")
        hidden = self.ssm.get_parameter(Name="/prod/db/password")["Parameter"]["Value"]
        self.assertNotEqual(hidden, "s3cret")
        self.assertTrue(base64.b64decode(hidden).startswith(b"wharf:ssm:not-decrypted:"))
        shown = self.ssm.get_parameter(
            Name=f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/db/password",
            WithDecryption=True)["Parameter"]
        self.assertEqual(shown["Value"], "s3cret")
        # The way an agent fetches a task's secrets.
        fetched = self.ssm.get_parameters(Names=["/prod/db/password"], WithDecryption=True)
        self.assertEqual(fetched["Parameters"][0]["Value"], "s3cret")
        self.assertEqual(fetched["InvalidParameters"], [])

    def test_errors_have_ssms_names_and_status(self):
        self.ssm.put_parameter(Name="/err/one", Type="String", Value="1")
        self.assertAwsError(lambda: self.ssm.put_parameter(Name="/err/one", Type="String",
                                                           Value="2"),
                            "ParameterAlreadyExists", message="overwrite")
        self.assertAwsError(lambda: self.ssm.get_parameter(Name="/err/none"), "ParameterNotFound")
        self.assertAwsError(lambda: self.ssm.get_parameter(Name="/err/one:5"),
                            "ParameterVersionNotFound")
        self.assertAwsError(lambda: self.ssm.delete_parameter(Name="/err/none"),
                            "ParameterNotFound")
        self.assertAwsError(lambda: self.ssm.put_parameter(Name="awsreserved", Type="String",
                                                           Value="x"),
                            "ValidationException", message="'aws' or 'ssm'")
        self.assertAwsError(lambda: self.ssm.put_parameter(Name="no/slash", Type="String",
                                                           Value="x"),
                            "ValidationException", message="fully qualified")
        deep = "/" + "/".join(str(level) for level in range(16))
        self.assertAwsError(lambda: self.ssm.put_parameter(Name=deep, Type="String", Value="x"),
                            "HierarchyLevelLimitExceededException")
        self.assertAwsError(lambda: self.ssm.put_parameter(
            Name="/err/one", Type="String", Value="x", Overwrite=True,
            Tags=[{"Key": "a", "Value": "b"}]),
            "ValidationException", message="tags and overwrite")
        self.assertAwsError(lambda: self.ssm.put_parameter(Name="/err/big", Type="String",
                                                           Value="x" * 4097),
                            "ValidationException", message="4096")
        self.assertAwsError(lambda: self.ssm.put_parameter(Name="/err/key", Type="SecureString",
                                                           Value="x", KeyId="not-a-key"),
                            "InvalidKeyId")
        self.assertAwsError(lambda: self.ssm.get_parameters_by_path(Path="/err", NextToken="x"),
                            "InvalidNextToken")
        self.assertAwsError(lambda: self.ssm.describe_parameters(
            ParameterFilters=[{"Key": "Label", "Values": ["x"]}]), "InvalidFilterKey")
        self.assertAwsError(lambda: self.ssm.list_tags_for_resource(
            ResourceType="Parameter", ResourceId="/err/none"), "InvalidResourceId")
        # Past the SDK's own checks: more than ten names.
        raw = self.server.signed_request(
            "GetParameters", {"Names": [f"/n{index}" for index in range(11)]},
            target="AmazonSSM.GetParameters", service="ssm")
        self.assertRawError(raw, "ValidationException", message="validation error")

    def test_labels_move_and_tags(self):
        ssm = self.ssm
        ssm.put_parameter(Name="/lbl/p", Type="String", Value="1",
                          Tags=[{"Key": "team", "Value": "web"}])
        ssm.put_parameter(Name="/lbl/p", Value="2", Overwrite=True)
        ssm.label_parameter_version(Name="/lbl/p", ParameterVersion=1, Labels=["live"])
        ssm.label_parameter_version(Name="/lbl/p", Labels=["live"])  # moves to version 2
        self.assertEqual(ssm.get_parameter(Name="/lbl/p:live")["Parameter"]["Version"], 2)
        removed = ssm.unlabel_parameter_version(Name="/lbl/p", ParameterVersion=2,
                                                Labels=["live", "never"])
        self.assertEqual((removed["RemovedLabels"], removed["InvalidLabels"]),
                         (["live"], ["never"]))
        ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="/lbl/p",
                                 Tags=[{"Key": "env", "Value": "prod"}])
        ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/lbl/p",
                                      TagKeys=["team"])
        self.assertEqual(ssm.list_tags_for_resource(ResourceType="Parameter",
                                                    ResourceId="/lbl/p")["TagList"],
                         [{"Key": "env", "Value": "prod"}])
        deleted = ssm.delete_parameters(Names=["/lbl/p", "/lbl/none"])
        self.assertEqual((deleted["DeletedParameters"], deleted["InvalidParameters"]),
                         (["/lbl/p"], ["/lbl/none"]))

    def test_paginators_walk_every_page(self):
        for index in range(23):
            self.ssm.put_parameter(Name=f"/pages/p{index:02}", Type="String", Value=str(index))
        for index in range(12):
            self.ssm.put_parameter(Name="/pages/history", Type="String", Value=str(index),
                                   Overwrite=True)
        by_path = self.ssm.get_paginator("get_parameters_by_path")
        pages = list(by_path.paginate(Path="/pages", PaginationConfig={"PageSize": 5}))
        self.assertEqual(len(pages), 5)
        names = [p["Name"] for page in pages for p in page["Parameters"]]
        self.assertEqual(names, ["/pages/history"] +
                         [f"/pages/p{index:02}" for index in range(23)])
        describe = self.ssm.get_paginator("describe_parameters")
        described = [p["Name"] for page in describe.paginate(
            ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": ["/pages/p"]}],
            PaginationConfig={"PageSize": 10}) for p in page["Parameters"]]
        self.assertEqual(len(described), 23)
        history = self.ssm.get_paginator("get_parameter_history")
        versions = [p["Version"] for page in history.paginate(
            Name="/pages/history", PaginationConfig={"PageSize": 5}) for p in page["Parameters"]]
        self.assertEqual(versions, list(range(1, 13)))


class ParameterStoreDurabilityTest(WharfTestCase):

    def test_acknowledged_parameters_survive_kill_9(self):
        ssm = self.server.client("ssm")
        ssm.put_parameter(Name="/durable/plain", Type="String", Value="v1",
                          Tags=[{"Key": "team", "Value": "web"}])
        ssm.put_parameter(Name="/durable/plain", Value="v2", Overwrite=True)
        ssm.label_parameter_version(Name="/durable/plain", ParameterVersion=1, Labels=["first"])
        ssm.put_parameter(Name="/durable/secret", Type="SecureString", Value="s3cret")
        ssm.put_parameter(Name="/durable/gone", Type="String", Value="x")
        ssm.delete_parameter(Name="/durable/gone")
        self.server.stop(signal.SIGKILL)
        self.server.start()
        ssm = self.server.client("ssm")
        self.assertEqual(ssm.get_parameter(Name="/durable/plain")["Parameter"]["Value"], "v2")
        self.assertEqual(ssm.get_parameter(Name="/durable/plain:first")["Parameter"]["Value"],
                         "v1")
        self.assertEqual(ssm.get_parameter(Name="/durable/secret",
                                           WithDecryption=True)["Parameter"]["Value"], "s3cret")
        self.assertEqual(ssm.list_tags_for_resource(ResourceType="Parameter",
                                                    ResourceId="/durable/plain")["TagList"],
                         [{"Key": "team", "Value": "web"}])
        self.assertAwsError(lambda: ssm.get_parameter(Name="/durable/gone"), "ParameterNotFound")


if __name__ == "__main__":
    unittest.main()
