"""Tagging clusters and task definitions: TagResource, UntagResource, ListTagsForResource and the
tag limits ECS enforces."""

import unittest

from harness import ACCOUNT, REGION, WharfTestCase


def tags_of(mapping):
    return [{"key": key, "value": value} for key, value in mapping.items()]


def as_mapping(tags):
    return {tag["key"]: tag["value"] for tag in tags}


class TagTest(WharfTestCase):

    def new_cluster(self, name, tags=None):
        return self.ecs.create_cluster(clusterName=name, tags=tags or [])["cluster"]["clusterArn"]

    def new_task_definition(self, family, tags=None):
        return self.ecs.register_task_definition(
            family=family, tags=tags or [],
            containerDefinitions=[{"name": "main", "image": "busybox", "memory": 64}],
        )["taskDefinition"]["taskDefinitionArn"]

    def listed(self, arn):
        return as_mapping(self.ecs.list_tags_for_resource(resourceArn=arn)["tags"])

    def check_tag_cycle(self, arn, initial):
        self.assertEqual(self.listed(arn), initial)
        self.ecs.tag_resource(resourceArn=arn,
                              tags=tags_of({"added": "1", "team": "renamed"}))
        self.assertEqual(self.listed(arn), {**initial, "added": "1", "team": "renamed"})
        self.ecs.untag_resource(resourceArn=arn, tagKeys=["team", "not-there"])
        self.assertEqual(self.listed(arn), {key: value for key, value in
                                            {**initial, "added": "1"}.items() if key != "team"})

    def test_cluster_tags(self):
        arn = self.new_cluster("tagged-cluster", tags_of({"team": "core", "tier": "gold"}))
        self.check_tag_cycle(arn, {"team": "core", "tier": "gold"})
        described = self.ecs.describe_clusters(clusters=[arn], include=["TAGS"])["clusters"][0]
        self.assertEqual(as_mapping(described["tags"]), {"tier": "gold", "added": "1"})

    def test_task_definition_tags(self):
        arn = self.new_task_definition("tagged-family", tags_of({"team": "core", "tier": "gold"}))
        self.check_tag_cycle(arn, {"team": "core", "tier": "gold"})
        described = self.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        self.assertEqual(as_mapping(described["tags"]), {"tier": "gold", "added": "1"})
        # Tags belong to one revision, not the family.
        second = self.new_task_definition("tagged-family")
        self.assertEqual(self.listed(second), {})

    def test_tags_via_aws_cli(self):
        arn = self.new_cluster("cli-tagged")
        self.server.aws("ecs", "tag-resource", "--resource-arn", arn, "--tags",
                        "key=from,value=cli")
        listed = self.server.aws("ecs", "list-tags-for-resource", "--resource-arn", arn)
        self.assertEqual(listed["tags"], [{"key": "from", "value": "cli"}])

    def test_fifty_tags_is_the_limit(self):
        fifty = {f"key-{index:02d}": str(index) for index in range(50)}
        arn = self.new_cluster("full-of-tags", tags_of(fifty))
        self.assertEqual(self.listed(arn), fifty)
        # Replacing a value keeps the count at 50; a 51st key does not fit.
        self.ecs.tag_resource(resourceArn=arn, tags=tags_of({"key-00": "changed"}))
        self.assertAwsError(lambda: self.ecs.tag_resource(
            resourceArn=arn, tags=tags_of({"one-too-many": "x"})), "InvalidParameterException")
        self.assertEqual(len(self.listed(arn)), 50)

    def test_more_than_fifty_tags_at_create(self):
        fifty_one = tags_of({f"key-{index:02d}": "v" for index in range(51)})
        self.assertAwsError(lambda: self.new_cluster("too-many-tags", fifty_one),
                            "InvalidParameterException")
        self.assertAwsError(lambda: self.new_task_definition("too-many-tags", fifty_one),
                            "InvalidParameterException")
        self.assertEqual(self.ecs.describe_clusters(clusters=["too-many-tags"])["clusters"], [])
        self.assertNotIn("too-many-tags",
                         self.ecs.list_task_definition_families()["families"])

    def test_reserved_aws_prefix(self):
        arn = self.new_cluster("reserved-prefix")
        for key in ("aws:created-by", "AWS:Owner"):
            with self.subTest(key):
                self.assertAwsError(lambda: self.ecs.tag_resource(
                    resourceArn=arn, tags=tags_of({key: "me"})), "InvalidParameterException")
                self.assertAwsError(lambda: self.new_cluster("reserved-at-create",
                                                             tags_of({key: "me"})),
                                    "InvalidParameterException")
        self.assertEqual(self.listed(arn), {})

    def test_key_and_value_lengths(self):
        arn = self.new_cluster("long-tags")
        self.ecs.tag_resource(resourceArn=arn, tags=tags_of({"k" * 128: "v" * 256}))
        self.assertAwsError(lambda: self.ecs.tag_resource(
            resourceArn=arn, tags=tags_of({"k" * 129: "v"})), "InvalidParameterException")
        self.assertAwsError(lambda: self.ecs.tag_resource(
            resourceArn=arn, tags=tags_of({"key": "v" * 257})), "InvalidParameterException")
        unvalidated = self.server.client(validate=False)  # boto3 itself refuses an empty key
        self.assertAwsError(lambda: unvalidated.tag_resource(
            resourceArn=arn, tags=tags_of({"": "empty key"})), "InvalidParameterException")
        self.assertEqual(self.listed(arn), {"k" * 128: "v" * 256})

    def test_unknown_resources(self):
        missing_cluster = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/never-created"
        self.assertAwsError(
            lambda: self.ecs.list_tags_for_resource(resourceArn=missing_cluster),
            ("ClusterNotFoundException", "ResourceNotFoundException", "InvalidParameterException"))
        missing_definition = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/never:1"
        self.assertAwsError(
            lambda: self.ecs.tag_resource(resourceArn=missing_definition,
                                          tags=tags_of({"a": "b"})),
            ("ResourceNotFoundException", "ClientException", "InvalidParameterException"))
        self.assertAwsError(
            lambda: self.ecs.list_tags_for_resource(resourceArn="not-an-arn"),
            "InvalidParameterException")


if __name__ == "__main__":
    unittest.main()
