"""Cluster lifecycle against a real server: create, describe, list, update, delete."""

import unittest

from harness import ACCOUNT, REGION, WharfTestCase

EXEC_CONFIGURATION = {"executeCommandConfiguration": {
    "logging": "OVERRIDE",
    "logConfiguration": {"cloudWatchLogGroupName": "/wharf/exec",
                         "cloudWatchEncryptionEnabled": True}}}
COUNT_FIELDS = ("registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount",
                "activeServicesCount")


def cluster_arn(name, region=REGION):
    return f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{name}"


def as_dict(pairs, key="name"):
    return {pair[key]: pair["value"] for pair in pairs}


class ClusterTest(WharfTestCase):

    def test_create_with_settings_configuration_and_tags(self):
        cluster = self.ecs.create_cluster(
            clusterName="insightful",
            settings=[{"name": "containerInsights", "value": "enabled"}],
            configuration=EXEC_CONFIGURATION,
            tags=[{"key": "team", "value": "platform"}, {"key": "env", "value": "test"}],
        )["cluster"]
        self.assertEqual(cluster["clusterName"], "insightful")
        self.assertEqual(cluster["clusterArn"], cluster_arn("insightful"))
        self.assertEqual(cluster["status"], "ACTIVE")
        self.assertEqual(as_dict(cluster["settings"]), {"containerInsights": "enabled"})
        self.assertEqual(cluster["configuration"], EXEC_CONFIGURATION)
        self.assertEqual(as_dict(cluster["tags"], "key"), {"team": "platform", "env": "test"})
        for field in COUNT_FIELDS:
            self.assertEqual(cluster[field], 0, field)

    def test_create_without_name_makes_default_cluster(self):
        cluster = self.ecs.create_cluster()["cluster"]
        self.assertEqual(cluster["clusterName"], "default")
        self.assertEqual(cluster["clusterArn"], cluster_arn("default"))
        # DescribeClusters without a cluster list describes "default".
        described = self.ecs.describe_clusters()
        self.assertEqual([c["clusterName"] for c in described["clusters"]], ["default"])

    def test_creating_an_existing_active_cluster_returns_it(self):
        first = self.ecs.create_cluster(
            clusterName="twice", tags=[{"key": "generation", "value": "first"}])["cluster"]
        second = self.ecs.create_cluster(clusterName="twice")["cluster"]
        self.assertEqual(second["clusterArn"], first["clusterArn"])
        self.assertEqual(second["status"], "ACTIVE")
        described = self.ecs.describe_clusters(clusters=["twice"], include=["TAGS"])["clusters"]
        self.assertEqual(len(described), 1)
        self.assertEqual(as_dict(described[0]["tags"], "key"), {"generation": "first"})
        arns = self.ecs.list_clusters()["clusterArns"]
        self.assertEqual(arns.count(first["clusterArn"]), 1)

    def test_describe_with_every_include(self):
        self.ecs.create_cluster(
            clusterName="described", settings=[{"name": "containerInsights", "value": "enhanced"}],
            configuration=EXEC_CONFIGURATION, tags=[{"key": "k", "value": "v"}])
        response = self.ecs.describe_clusters(
            clusters=["described", cluster_arn("described"), "no-such-cluster"],
            include=["TAGS", "SETTINGS", "STATISTICS", "CONFIGURATIONS"])
        self.assertEqual(len(response["clusters"]), 2)
        for cluster in response["clusters"]:
            self.assertEqual(cluster["clusterArn"], cluster_arn("described"))
            self.assertEqual(cluster["status"], "ACTIVE")
            self.assertEqual(as_dict(cluster["tags"], "key"), {"k": "v"})
            self.assertEqual(as_dict(cluster["settings"]), {"containerInsights": "enhanced"})
            self.assertEqual(cluster["configuration"], EXEC_CONFIGURATION)
            for field in COUNT_FIELDS:
                self.assertEqual(cluster[field], 0, field)
            statistics = as_dict(cluster["statistics"])
            self.assertTrue(statistics, "STATISTICS asked for but none returned")
            for name, value in statistics.items():
                self.assertEqual(value, "0", name)
        self.assertEqual(response["failures"],
                         [{"arn": cluster_arn("no-such-cluster"), "reason": "MISSING"}])

    def test_describe_without_include_leaves_out_tags_and_statistics(self):
        self.ecs.create_cluster(clusterName="plain", tags=[{"key": "hidden", "value": "yes"}])
        cluster = self.ecs.describe_clusters(clusters=["plain"])["clusters"][0]
        self.assertEqual(cluster.get("tags", []), [])
        self.assertEqual(cluster.get("statistics", []), [])

    def test_describe_unknown_clusters_reports_missing(self):
        response = self.ecs.describe_clusters(clusters=["ghost-1", cluster_arn("ghost-2")])
        self.assertEqual(response["clusters"], [])
        self.assertEqual(
            sorted(response["failures"], key=lambda failure: failure["arn"]),
            [{"arn": cluster_arn("ghost-1"), "reason": "MISSING"},
             {"arn": cluster_arn("ghost-2"), "reason": "MISSING"}])

    def test_describe_at_most_100_clusters(self):
        self.assertAwsError(lambda: self.ecs.describe_clusters(
            clusters=[f"c{index}" for index in range(101)]), "InvalidParameterException")
        response = self.ecs.describe_clusters(clusters=[f"c{index}" for index in range(100)])
        self.assertEqual(len(response["failures"]), 100)

    def test_list_clusters_pages(self):
        region = "ap-southeast-2"  # a region of its own, so the count is exact
        ecs = self.server.client(region=region)
        names = [f"paged-{index:02d}" for index in range(7)]
        for name in names:
            ecs.create_cluster(clusterName=name)
        seen = []
        pages = 0
        kwargs = {"maxResults": 3}
        while True:
            page = ecs.list_clusters(**kwargs)
            pages += 1
            self.assertLessEqual(len(page["clusterArns"]), 3)
            seen.extend(page["clusterArns"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        self.assertEqual(pages, 3)
        self.assertEqual(sorted(seen), sorted(cluster_arn(name, region) for name in names))
        # The boto3 paginator agrees.
        paginated = [arn for page in ecs.get_paginator("list_clusters").paginate(
            PaginationConfig={"PageSize": 2}) for arn in page["clusterArns"]]
        self.assertEqual(sorted(paginated), sorted(seen))

    def test_update_cluster(self):
        self.ecs.create_cluster(clusterName="updated")
        cluster = self.ecs.update_cluster(
            cluster="updated", settings=[{"name": "containerInsights", "value": "enabled"}],
            configuration=EXEC_CONFIGURATION)["cluster"]
        self.assertEqual(cluster["clusterArn"], cluster_arn("updated"))
        self.assertEqual(as_dict(cluster["settings"]), {"containerInsights": "enabled"})
        self.assertEqual(cluster["configuration"], EXEC_CONFIGURATION)
        [described] = self.ecs.describe_clusters(
            clusters=[cluster_arn("updated")], include=["SETTINGS", "CONFIGURATIONS"])["clusters"]
        self.assertEqual(as_dict(described["settings"]), {"containerInsights": "enabled"})
        self.assertEqual(described["configuration"], EXEC_CONFIGURATION)

    def test_update_cluster_settings(self):
        self.ecs.create_cluster(clusterName="settled",
                                settings=[{"name": "containerInsights", "value": "disabled"}])
        cluster = self.ecs.update_cluster_settings(
            cluster=cluster_arn("settled"),
            settings=[{"name": "containerInsights", "value": "enhanced"}])["cluster"]
        self.assertEqual(as_dict(cluster["settings"]), {"containerInsights": "enhanced"})
        described = self.ecs.describe_clusters(clusters=["settled"],
                                               include=["SETTINGS"])["clusters"][0]
        self.assertEqual(as_dict(described["settings"]), {"containerInsights": "enhanced"})

    def test_invalid_settings_are_refused(self):
        self.assertAwsError(lambda: self.ecs.create_cluster(
            clusterName="bad-settings", settings=[{"name": "containerInsights", "value": "maybe"}]),
            "InvalidParameterException")
        self.ecs.create_cluster(clusterName="good-settings")
        self.assertAwsError(lambda: self.ecs.update_cluster_settings(
            cluster="good-settings", settings=[{"name": "containerInsights", "value": "loud"}]),
            "InvalidParameterException")

    def test_invalid_cluster_name_is_refused(self):
        self.assertAwsError(lambda: self.ecs.create_cluster(clusterName="has spaces!"),
                            "InvalidParameterException")
        self.assertAwsError(lambda: self.ecs.create_cluster(clusterName="x" * 256),
                            "InvalidParameterException")

    def test_unknown_cluster_is_cluster_not_found(self):
        self.assertAwsError(lambda: self.ecs.update_cluster_settings(
            cluster="nowhere", settings=[{"name": "containerInsights", "value": "enabled"}]),
            "ClusterNotFoundException")
        self.assertAwsError(lambda: self.ecs.update_cluster(
            cluster="nowhere", settings=[{"name": "containerInsights", "value": "enabled"}]),
            "ClusterNotFoundException")
        self.assertAwsError(lambda: self.ecs.delete_cluster(cluster="nowhere"),
                            "ClusterNotFoundException")

    def test_delete_cluster(self):
        arn = self.ecs.create_cluster(clusterName="doomed", tags=[{"key": "old", "value": "1"}])[
            "cluster"]["clusterArn"]
        deleted = self.ecs.delete_cluster(cluster="doomed")["cluster"]
        self.assertEqual(deleted["clusterArn"], arn)
        self.assertEqual(deleted["status"], "INACTIVE")
        # Still describable, no longer listed, no longer changeable.
        described = self.ecs.describe_clusters(clusters=[arn])
        self.assertEqual([c["status"] for c in described["clusters"]], ["INACTIVE"])
        self.assertEqual(described["failures"], [])
        self.assertNotIn(arn, self.ecs.list_clusters()["clusterArns"])
        self.assertAwsError(lambda: self.ecs.delete_cluster(cluster="doomed"),
                            "ClusterNotFoundException")
        self.assertAwsError(lambda: self.ecs.update_cluster_settings(
            cluster="doomed", settings=[{"name": "containerInsights", "value": "enabled"}]),
            "ClusterNotFoundException")
        # The name can be used again, for a new cluster.
        again = self.ecs.create_cluster(clusterName="doomed")["cluster"]
        self.assertEqual(again["status"], "ACTIVE")
        self.assertEqual(self.ecs.list_tags_for_resource(resourceArn=arn)["tags"], [])
        self.assertIn(arn, self.ecs.list_clusters()["clusterArns"])

    def test_aws_cli_round_trip(self):
        created = self.server.aws("ecs", "create-cluster", "--cluster-name", "from-cli",
                                  "--settings", "name=containerInsights,value=enabled")
        self.assertEqual(created["cluster"]["clusterArn"], cluster_arn("from-cli"))
        listed = self.server.aws("ecs", "list-clusters")
        self.assertIn(cluster_arn("from-cli"), listed["clusterArns"])
        described = self.server.aws("ecs", "describe-clusters", "--clusters", "from-cli",
                                    "--include", "SETTINGS")
        self.assertEqual(as_dict(described["clusters"][0]["settings"]),
                         {"containerInsights": "enabled"})
        deleted = self.server.aws("ecs", "delete-cluster", "--cluster", "from-cli")
        self.assertEqual(deleted["cluster"]["status"], "INACTIVE")


if __name__ == "__main__":
    unittest.main()
