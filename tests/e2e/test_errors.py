"""The protocol's error paths, each checked by exception name and HTTP status: unknown
operations, malformed and oversized bodies, model validation, authentication, request ids, and
region partitioning."""

import datetime
import http.client
import json
import unittest
from unittest import mock

from botocore.exceptions import ClientError

from harness import ACCOUNT, REGION, WharfTestCase, utc_now

MIB = 1024 * 1024


class ProtocolErrorTest(WharfTestCase):

    def test_signed_raw_request_succeeds(self):
        # The raw path itself works, so the failures below are about what they change.
        response = self.server.signed_request("ListClusters", {})
        self.assertEqual(response.status, 200, response)
        self.assertIn("clusterArns", response.json)
        self.assertTrue(response.headers.get("x-amzn-requestid"))

    def test_unknown_operation(self):
        response = self.server.signed_request("LaunchRockets", {})
        self.assertRawError(response, "UnknownOperationException", 400)
        response = self.server.signed_request(None, {}, target="NotAService_2020.ListClusters")
        self.assertRawError(response, "UnknownOperationException", 400)

    def test_malformed_json_body(self):
        for body in (b'{"clusterName": "x"', b"not json at all", b'["a", "list"]'):
            with self.subTest(body=body):
                response = self.server.signed_request("CreateCluster", body)
                self.assertRawError(response, "SerializationException", 400)

    def test_wrong_type_names_the_member(self):
        ecs = self.server.client(validate=False)
        error = self.assertAwsError(lambda: ecs.create_cluster(clusterName=12345),
                                    "InvalidParameterException")
        self.assertIn("clusterName", error["Error"]["Message"])
        error = self.assertAwsError(lambda: ecs.list_clusters(maxResults="ten"),
                                    "InvalidParameterException")
        self.assertIn("maxResults", error["Error"]["Message"])
        error = self.assertAwsError(lambda: ecs.register_task_definition(
            family="typed", containerDefinitions=[{"name": "a", "image": "busybox",
                                                   "memory": "lots"}]),
            "InvalidParameterException")
        self.assertIn("memory", error["Error"]["Message"])

    def test_missing_required_member_names_it(self):
        ecs = self.server.client(validate=False)
        error = self.assertAwsError(lambda: ecs.describe_task_definition(),
                                    "InvalidParameterException")
        self.assertIn("taskDefinition", error["Error"]["Message"])
        error = self.assertAwsError(lambda: ecs.register_task_definition(family="no-containers"),
                                    "InvalidParameterException")
        self.assertIn("containerDefinitions", error["Error"]["Message"])
        error = self.assertAwsError(lambda: ecs.tag_resource(
            resourceArn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/x"), "InvalidParameterException")
        self.assertIn("tags", error["Error"]["Message"])

    def test_oversized_body_is_413(self):
        response = self.server.oversized_request(10 * MIB + 1024)
        self.assertEqual(response.status, 413, response)
        self.assertEqual(response.error_type, "RequestEntityTooLargeException", response)
        # The server is still fine afterwards, and a body under the limit is read and judged.
        self.assertIn("clusterArns", self.ecs.list_clusters())
        response = self.server.signed_request(
            "CreateCluster", json.dumps({"clusterName": "y" * (9 * MIB)}))
        self.assertRawError(response, "InvalidParameterException", 400)

    def test_cluster_not_found(self):
        self.assertAwsError(lambda: self.ecs.delete_cluster(cluster="absent"),
                            "ClusterNotFoundException")
        self.assertAwsError(lambda: self.ecs.update_cluster(
            cluster=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/absent",
            settings=[{"name": "containerInsights", "value": "enabled"}]),
            "ClusterNotFoundException")

    def test_client_exception_from_aws_cli(self):
        result = self.server.aws("ecs", "describe-task-definition", "--task-definition",
                                 "nothing-here:1", check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ClientException", result.stderr)


class AuthenticationTest(WharfTestCase):

    def test_wrong_secret_key(self):
        ecs = self.server.client(secret="not-the-right-secret-key-at-all-000000000")
        self.assertAwsError(lambda: ecs.list_clusters(), "InvalidSignatureException", 403,
                            "The request signature we calculated does not match")

    def test_unknown_access_key(self):
        ecs = self.server.client(access_key="AKIAUNKNOWNKEY000000")
        self.assertAwsError(lambda: ecs.list_clusters(), "UnrecognizedClientException", 403)

    def test_stale_signature_is_expired(self):
        stale = utc_now() - datetime.timedelta(minutes=20)
        response = self.server.signed_request("ListClusters", {}, signed_at=stale)
        self.assertRawError(response, "InvalidSignatureException", 403, "Signature expired")

    def test_future_signature_is_refused(self):
        future = utc_now() + datetime.timedelta(minutes=20)
        response = self.server.signed_request("ListClusters", {}, signed_at=future)
        self.assertRawError(response, "InvalidSignatureException", 403)

    def test_slightly_skewed_signature_is_accepted(self):
        skewed = utc_now() - datetime.timedelta(minutes=4)
        response = self.server.signed_request("ListClusters", {}, signed_at=skewed)
        self.assertEqual(response.status, 200, response)

    def test_credential_scoped_to_another_service(self):
        response = self.server.signed_request("ListClusters", {}, service="ec2")
        self.assertRawError(response, "InvalidSignatureException", 403)

    def test_unsigned_request(self):
        response = self.server.signed_request("ListClusters", {}, sign=False)
        self.assertRawError(response, "MissingAuthenticationTokenException", 403)

    def test_tampered_body(self):
        # Sign one body, send another: the signature no longer matches.
        original = http.client.HTTPConnection.request

        def swap_body(connection, method, url, body=None, headers=None, **kwargs):
            return original(connection, method, url, body=b'{"maxResults": 2}',
                            headers=headers, **kwargs)

        with mock.patch.object(http.client.HTTPConnection, "request", swap_body):
            response = self.server.signed_request("ListClusters", b'{"maxResults": 1}')
        self.assertRawError(response, "InvalidSignatureException", 403)


class RequestIdTest(WharfTestCase):

    def test_request_id_on_success(self):
        first = self.ecs.list_clusters()["ResponseMetadata"]
        second = self.ecs.list_clusters()["ResponseMetadata"]
        self.assertTrue(first["HTTPHeaders"].get("x-amzn-requestid"))
        self.assertEqual(first["RequestId"], first["HTTPHeaders"]["x-amzn-requestid"])
        self.assertNotEqual(first["RequestId"], second["RequestId"])

    def test_request_id_on_errors(self):
        calls = {
            "ClusterNotFoundException": lambda: self.ecs.delete_cluster(cluster="nope"),
            "ClientException": lambda: self.ecs.describe_task_definition(taskDefinition="nope:1"),
            "InvalidSignatureException": lambda: self.server.client(
                secret="wrong-secret-wrong-secret-wrong-secret00").list_clusters(),
            "UnrecognizedClientException": lambda: self.server.client(
                access_key="AKIANOBODY0000000000").list_clusters(),
        }
        for code, call in calls.items():
            with self.subTest(code):
                with self.assertRaises(ClientError) as caught:
                    call()
                metadata = caught.exception.response["ResponseMetadata"]
                self.assertEqual(caught.exception.response["Error"]["Code"], code)
                self.assertTrue(metadata["HTTPHeaders"].get("x-amzn-requestid"), metadata)

    def test_request_id_on_protocol_errors(self):
        responses = {
            "UnknownOperationException": self.server.signed_request("Nope", {}),
            "SerializationException": self.server.signed_request("ListClusters", b"{"),
            "MissingAuthenticationTokenException": self.server.signed_request(
                "ListClusters", {}, sign=False),
        }
        for code, response in responses.items():
            with self.subTest(code):
                self.assertEqual(response.error_type, code, response)
                self.assertTrue(response.headers.get("x-amzn-requestid"), response)

    def test_request_id_on_oversized_body(self):
        response = self.server.oversized_request(10 * MIB + 1024)
        self.assertEqual(response.status, 413, response)
        self.assertTrue(response.headers.get("x-amzn-requestid"), response)


class RegionTest(WharfTestCase):

    def test_clusters_are_partitioned_by_region(self):
        east = self.server.client(region="us-east-1")
        west = self.server.client(region="eu-west-1")
        east_arn = east.create_cluster(clusterName="regional")["cluster"]["clusterArn"]
        self.assertEqual(east_arn, f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/regional")

        described = west.describe_clusters(clusters=["regional"])
        self.assertEqual(described["clusters"], [])
        self.assertEqual(described["failures"],
                         [{"arn": f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/regional",
                           "reason": "MISSING"}])
        self.assertNotIn(east_arn, west.list_clusters()["clusterArns"])
        self.assertAwsError(lambda: west.delete_cluster(cluster="regional"),
                            "ClusterNotFoundException")
        # An ARN from another region does not reach across either.
        self.assertEqual(west.describe_clusters(clusters=[east_arn])["clusters"], [])

        west_arn = west.create_cluster(clusterName="regional")["cluster"]["clusterArn"]
        self.assertEqual(west_arn, f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/regional")
        west.delete_cluster(cluster="regional")
        still = east.describe_clusters(clusters=["regional"])["clusters"]
        self.assertEqual([c["status"] for c in still], ["ACTIVE"])

    def test_task_definitions_are_partitioned_by_region(self):
        east = self.server.client(region="us-east-1")
        west = self.server.client(region="eu-west-1")
        definition = {"family": "regional-family",
                      "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 64}]}
        east_arn = east.register_task_definition(**definition)["taskDefinition"][
            "taskDefinitionArn"]
        self.assertEqual(east_arn,
                         f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/regional-family:1")
        self.assertAwsError(lambda: west.describe_task_definition(
            taskDefinition="regional-family"), "ClientException")
        self.assertNotIn("regional-family", west.list_task_definition_families()["families"])
        # Each region counts its own revisions.
        west_arn = west.register_task_definition(**definition)["taskDefinition"][
            "taskDefinitionArn"]
        self.assertEqual(west_arn,
                         f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/regional-family:1")

    def test_raw_request_region_comes_from_the_signature(self):
        response = self.server.signed_request(
            "CreateCluster", json.dumps({"clusterName": "scoped"}), region="ap-south-1")
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.json["cluster"]["clusterArn"],
                         f"arn:aws:ecs:ap-south-1:{ACCOUNT}:cluster/scoped")


if __name__ == "__main__":
    unittest.main()
