"""EC2 networking against a real server, over EC2's Query protocol: the default VPC and subnet,
security groups and their rules, subnets, tags, every error code, and a restart."""

import json
import unittest

from harness import ACCOUNT, REGION, WharfServer, WharfTestCase, tcp

DEFAULT_VPC_CIDR = "172.31.0.0/16"
DEFAULT_SUBNET_CIDR = "172.31.0.0/20"


def rule_sources(group):
    """{(protocol, from, to): sorted CIDRs and group ids} of a described group's ingress."""
    out = {}
    for permission in group["IpPermissions"]:
        key = (permission["IpProtocol"], permission.get("FromPort"), permission.get("ToPort"))
        out[key] = sorted([r["CidrIp"] for r in permission.get("IpRanges", [])] +
                          [p["GroupId"] for p in permission.get("UserIdGroupPairs", [])])
    return out


class Ec2Test(WharfTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ec2 = cls.server.client("ec2")
        # Without boto3's own checks, so the server's MissingParameter answers can be seen.
        cls.raw_ec2 = cls.server.client("ec2", validate=False)
        cls.vpc_id = cls.ec2.describe_vpcs(
            Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]

    def aws_error(self, *args):
        """Runs the aws CLI expecting failure; returns its stderr."""
        result = self.server.aws(*args, check=False)
        self.assertNotEqual(result.returncode, 0, result.stdout)
        return result.stderr

    def create_group(self, name, description="test group"):
        return self.ec2.create_security_group(GroupName=name, Description=description)["GroupId"]

    def describe_group(self, group_id):
        return self.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]

    def test_default_vpc_subnet_and_group_with_the_cli(self):
        vpcs = self.server.aws("ec2", "describe-vpcs")["Vpcs"]
        self.assertEqual(len(vpcs), 1)
        self.assertTrue(vpcs[0]["IsDefault"])
        self.assertEqual(vpcs[0]["CidrBlock"], DEFAULT_VPC_CIDR)
        self.assertEqual(vpcs[0]["State"], "available")
        self.assertEqual(vpcs[0]["OwnerId"], ACCOUNT)
        self.assertRegex(vpcs[0]["VpcId"], r"^vpc-[0-9a-f]{17}$")

        subnets = self.server.aws("ec2", "describe-subnets", "--filters",
                                  "Name=default-for-az,Values=true")["Subnets"]
        self.assertEqual(len(subnets), 1)
        subnet = subnets[0]
        self.assertRegex(subnet["SubnetId"], r"^subnet-[0-9a-f]{17}$")
        self.assertEqual(subnet["VpcId"], vpcs[0]["VpcId"])
        self.assertEqual(subnet["CidrBlock"], DEFAULT_SUBNET_CIDR)
        self.assertEqual(subnet["AvailabilityZone"], REGION + "a")
        self.assertTrue(subnet["DefaultForAz"])
        self.assertEqual(subnet["AvailableIpAddressCount"], 4096 - 5)
        self.assertEqual(subnet["State"], "available")
        self.assertEqual(subnet["SubnetArn"],
                         f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{subnet['SubnetId']}")

        groups = self.server.aws("ec2", "describe-security-groups", "--group-names",
                                 "default")["SecurityGroups"]
        self.assertEqual(len(groups), 1)
        default = groups[0]
        self.assertEqual(default["VpcId"], vpcs[0]["VpcId"])
        self.assertEqual(default["IpPermissions"][0]["IpProtocol"], "-1")
        self.assertEqual(default["IpPermissions"][0]["UserIdGroupPairs"],
                         [{"GroupId": default["GroupId"], "UserId": ACCOUNT}])
        self.assertEqual(default["IpPermissionsEgress"][0]["IpRanges"], [{"CidrIp": "0.0.0.0/0"}])

        # Another region has a network of its own.
        other = self.server.aws("ec2", "describe-vpcs", region="eu-west-1")["Vpcs"]
        self.assertNotEqual(other[0]["VpcId"], vpcs[0]["VpcId"])

    def test_security_group_lifecycle_with_the_cli(self):
        web = self.server.aws("ec2", "create-security-group", "--group-name", "cli-web",
                              "--description", "web servers")["GroupId"]
        lb = self.server.aws("ec2", "create-security-group", "--group-name", "cli-lb",
                             "--description", "load balancers", "--vpc-id", self.vpc_id,
                             "--tag-specifications",
                             "ResourceType=security-group,Tags=[{Key=team,Value=edge}]")["GroupId"]
        self.assertRegex(web, r"^sg-[0-9a-f]{17}$")
        authorized = self.server.aws("ec2", "authorize-security-group-ingress", "--group-id", web,
                                     "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
        self.assertTrue(authorized["Return"])
        self.assertEqual(authorized["SecurityGroupRules"][0]["CidrIpv4"], "0.0.0.0/0")
        self.assertRegex(authorized["SecurityGroupRules"][0]["SecurityGroupRuleId"],
                         r"^sgr-[0-9a-f]{17}$")
        self.server.aws("ec2", "authorize-security-group-ingress", "--group-id", web,
                        "--protocol", "tcp", "--port", "8080", "--source-group", lb)
        # A source group by name, and a port range.
        self.server.aws("ec2", "authorize-security-group-ingress", "--group-name", "cli-web",
                        "--protocol", "udp", "--port", "5000-5010", "--source-group", "cli-lb")

        group = self.server.aws("ec2", "describe-security-groups", "--group-ids",
                                web)["SecurityGroups"][0]
        self.assertEqual(group["GroupName"], "cli-web")
        self.assertEqual(group["Description"], "web servers")
        self.assertEqual(rule_sources(group), {("tcp", 80, 80): ["0.0.0.0/0"],
                                               ("tcp", 8080, 8080): [lb],
                                               ("udp", 5000, 5010): [lb]})
        pairs = [pair for permission in group["IpPermissions"]
                 for pair in permission["UserIdGroupPairs"]]
        self.assertTrue(all(pair["UserId"] == ACCOUNT for pair in pairs))
        tagged = self.server.aws("ec2", "describe-security-groups", "--filters",
                                 "Name=tag:team,Values=edge")["SecurityGroups"]
        self.assertEqual([g["GroupId"] for g in tagged], [lb])

        self.server.aws("ec2", "revoke-security-group-ingress", "--group-id", web,
                        "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
        self.assertNotIn(("tcp", 80, 80), rule_sources(self.describe_group(web)))
        # lb is still named by web's rules.
        self.assertIn("(DependencyViolation)",
                      self.aws_error("ec2", "delete-security-group", "--group-id", lb))
        self.server.aws("ec2", "revoke-security-group-ingress", "--group-id", web,
                        "--protocol", "tcp", "--port", "8080", "--source-group", lb)
        self.server.aws("ec2", "revoke-security-group-ingress", "--group-id", web,
                        "--protocol", "udp", "--port", "5000-5010", "--source-group", lb)
        self.server.aws("ec2", "delete-security-group", "--group-id", lb)
        self.server.aws("ec2", "delete-security-group", "--group-name", "cli-web")
        self.assertIn("(InvalidGroup.NotFound)",
                      self.aws_error("ec2", "describe-security-groups", "--group-ids", web))

    def test_ip_permissions_rule_ids_and_filters_with_boto3(self):
        db = self.create_group("boto-db", "databases")
        app = self.create_group("boto-app", "applications")
        answer = self.ec2.authorize_security_group_ingress(
            GroupId=db, IpPermissions=[tcp(5432, cidrs=["10.0.0.0/8", "192.168.0.0/16"],
                                           groups=[app]),
                                       {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
                                        "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        self.assertTrue(answer["Return"])
        rules = answer["SecurityGroupRules"]
        self.assertEqual(len(rules), 4)
        self.assertEqual({rule["IsEgress"] for rule in rules}, {False})
        by_group = [rule for rule in rules if "ReferencedGroupInfo" in rule]
        self.assertEqual(by_group[0]["ReferencedGroupInfo"]["GroupId"], app)
        self.assertEqual(rule_sources(self.describe_group(db)),
                         {("tcp", 5432, 5432): sorted(["10.0.0.0/8", "192.168.0.0/16", app]),
                          ("icmp", -1, -1): ["10.0.0.0/8"]})

        revoked = self.ec2.revoke_security_group_ingress(
            GroupId=db, SecurityGroupRuleIds=[by_group[0]["SecurityGroupRuleId"]])
        self.assertTrue(revoked["Return"])
        self.assertNotIn(app, rule_sources(self.describe_group(db))[("tcp", 5432, 5432)])
        # "all" protocols, written as -1, carry no ports.
        self.ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": app}]}])
        everything = [permission for permission in self.describe_group(db)["IpPermissions"]
                      if permission["IpProtocol"] == "-1"]
        self.assertEqual(len(everything), 1)
        self.assertNotIn("FromPort", everything[0])

        named = self.ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["boto-*"]},
                     {"Name": "vpc-id", "Values": [self.vpc_id]}])["SecurityGroups"]
        self.assertEqual(sorted(g["GroupName"] for g in named), ["boto-app", "boto-db"])
        self.ec2.create_tags(Resources=[db], Tags=[{"Key": "tier", "Value": "data"}])
        tagged = self.ec2.describe_security_groups(
            Filters=[{"Name": "tag:tier", "Values": ["data"]}])["SecurityGroups"]
        self.assertEqual([g["GroupId"] for g in tagged], [db])
        self.ec2.delete_tags(Resources=[db], Tags=[{"Key": "tier"}])
        self.assertEqual(self.describe_group(db).get("Tags", []), [])

    def test_subnets(self):
        created = self.server.aws("ec2", "create-subnet", "--vpc-id", self.vpc_id, "--cidr-block",
                                  "172.31.16.0/24", "--availability-zone", REGION + "b",
                                  "--tag-specifications",
                                  "ResourceType=subnet,Tags=[{Key=tier,Value=app}]")["Subnet"]
        subnet_id = created["SubnetId"]
        self.assertRegex(subnet_id, r"^subnet-[0-9a-f]{17}$")
        self.assertEqual(created["CidrBlock"], "172.31.16.0/24")
        self.assertEqual(created["AvailabilityZone"], REGION + "b")
        self.assertEqual(created["AvailableIpAddressCount"], 256 - 5)
        self.assertFalse(created["DefaultForAz"])
        self.assertFalse(created["MapPublicIpOnLaunch"])
        self.assertEqual(created["State"], "available")
        self.assertEqual(created["SubnetArn"], f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{subnet_id}")

        described = self.server.aws("ec2", "describe-subnets", "--subnet-ids",
                                    subnet_id)["Subnets"]
        self.assertEqual(described, [created])
        in_vpc = self.ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}])["Subnets"]
        self.assertIn(subnet_id, [s["SubnetId"] for s in in_vpc])
        tagged = self.ec2.describe_subnets(
            Filters=[{"Name": "tag:tier", "Values": ["app"]}])["Subnets"]
        self.assertEqual([s["SubnetId"] for s in tagged], [subnet_id])

        self.server.aws("ec2", "delete-subnet", "--subnet-id", subnet_id)
        self.assertIn("(InvalidSubnetID.NotFound)",
                      self.aws_error("ec2", "describe-subnets", "--subnet-ids", subnet_id))

    def test_every_error_code(self):
        web = self.create_group("errors-web")
        self.ec2.authorize_security_group_ingress(GroupId=web,
                                                  IpPermissions=[tcp(80, ["0.0.0.0/0"])])
        default = self.ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
        ec2, raw = self.ec2, self.raw_ec2
        cases = [
            ("InvalidGroup.NotFound",
             lambda: ec2.describe_security_groups(GroupIds=["sg-12345678"])),
            ("InvalidGroup.NotFound",
             lambda: ec2.delete_security_group(GroupName="no-such-group")),
            ("InvalidGroup.NotFound",
             lambda: ec2.authorize_security_group_ingress(
                 GroupId=web, IpPermissions=[tcp(81, groups=["sg-12345678"])])),
            ("InvalidGroup.Duplicate",
             lambda: ec2.create_security_group(GroupName="errors-web", Description="again")),
            ("InvalidGroupId.Malformed",
             lambda: ec2.describe_security_groups(GroupIds=["errors-web"])),
            ("InvalidPermission.Duplicate",
             lambda: ec2.authorize_security_group_ingress(
                 GroupId=web, IpPermissions=[tcp(80, ["0.0.0.0/0"])])),
            ("InvalidPermission.NotFound",
             lambda: ec2.revoke_security_group_ingress(
                 GroupId=web, IpPermissions=[tcp(443, ["0.0.0.0/0"])])),
            ("InvalidSubnetID.NotFound",
             lambda: ec2.describe_subnets(SubnetIds=["subnet-12345678"])),
            ("InvalidSubnetID.NotFound",
             lambda: ec2.delete_subnet(SubnetId="subnet-12345678")),
            ("InvalidSubnet.Conflict",
             lambda: ec2.create_subnet(VpcId=self.vpc_id, CidrBlock="172.31.1.0/24")),
            ("InvalidSubnet.Range",
             lambda: ec2.create_subnet(VpcId=self.vpc_id, CidrBlock="10.0.0.0/24")),
            ("InvalidSubnet.Range",
             lambda: ec2.create_subnet(VpcId=self.vpc_id, CidrBlock="172.31.128.0/29")),
            ("InvalidVpcID.NotFound",
             lambda: ec2.create_subnet(VpcId="vpc-12345678", CidrBlock="172.31.128.0/24")),
            ("InvalidVpcID.NotFound",
             lambda: ec2.create_security_group(GroupName="x", Description="x",
                                               VpcId="vpc-12345678")),
            ("CannotDelete",
             lambda: ec2.delete_security_group(GroupId=default["GroupId"])),
            ("InvalidParameterValue",
             lambda: ec2.authorize_security_group_ingress(
                 GroupId=web, IpPermissions=[tcp(70000, ["0.0.0.0/0"])])),
            ("InvalidParameterValue",
             lambda: ec2.authorize_security_group_ingress(
                 GroupId=web, IpPermissions=[tcp(22, ["10.0.0.1/8"])])),
            ("InvalidParameterValue",
             lambda: ec2.authorize_security_group_ingress(
                 GroupId=web, IpPermissions=[{"IpProtocol": "sctp", "FromPort": 1, "ToPort": 2,
                                              "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])),
            ("InvalidParameterValue",
             lambda: ec2.describe_subnets(Filters=[{"Name": "colour", "Values": ["blue"]}])),
            ("MissingParameter",
             lambda: raw.create_security_group(GroupName="no-description")),
            ("MissingParameter",
             lambda: ec2.authorize_security_group_ingress(GroupId=web)),
            ("MissingParameter",
             lambda: ec2.create_subnet(VpcId=self.vpc_id)),
            ("InvalidParameterCombination",
             lambda: ec2.authorize_security_group_ingress(
                 GroupId=web, GroupName="errors-web", IpPermissions=[tcp(22, ["0.0.0.0/0"])])),
            ("InvalidParameterCombination",
             lambda: ec2.authorize_security_group_ingress(
                 GroupId=web, CidrIp="10.0.0.0/8", IpPermissions=[tcp(22, ["0.0.0.0/0"])])),
        ]
        for code, call in cases:
            with self.subTest(code=code):
                error = self.assertAwsError(call, code, 400)
                self.assertTrue(error["Error"]["Message"], error)

        # DependencyViolation: a group named by another group's rule.
        referenced = self.create_group("errors-referenced")
        self.ec2.authorize_security_group_ingress(GroupId=web,
                                                  IpPermissions=[tcp(9000, groups=[referenced])])
        self.assertAwsError(lambda: ec2.delete_security_group(GroupId=referenced),
                            "DependencyViolation", 400)

    def test_error_document_on_the_wire(self):
        result = self.server.aws("ec2", "delete-security-group", "--group-id", "sg-12345678",
                                 check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("(InvalidGroup.NotFound)", result.stderr)
        self.assertIn("sg-12345678", result.stderr)


class Ec2RestartTest(unittest.TestCase):
    """Groups, rules, subnets, tags and a deleted default subnet survive a restart; the default
    network keeps its ids."""

    def test_restart_keeps_groups_and_subnets(self):
        server = WharfServer()
        self.addCleanup(server.cleanup)
        server.start()
        ec2 = server.client("ec2")
        vpc_id = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        default_group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
        web = ec2.create_security_group(GroupName="web", Description="web servers")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            tcp(80, ["0.0.0.0/0"]), tcp(8080, groups=[default_group["GroupId"]])])
        ec2.authorize_security_group_ingress(GroupId=default_group["GroupId"],
                                             IpPermissions=[tcp(22, ["10.0.0.0/8"])])
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="172.31.32.0/20")["Subnet"]
        ec2.create_tags(Resources=[subnet["SubnetId"], vpc_id],
                        Tags=[{"Key": "Name", "Value": "kept"}])
        default_subnet = ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
        ec2.delete_subnet(SubnetId=default_subnet["SubnetId"])
        before = {
            "groups": ec2.describe_security_groups()["SecurityGroups"],
            "subnets": ec2.describe_subnets()["Subnets"],
            "vpcs": ec2.describe_vpcs()["Vpcs"],
        }

        server.restart()
        ec2 = server.client("ec2")
        after = {
            "groups": ec2.describe_security_groups()["SecurityGroups"],
            "subnets": ec2.describe_subnets()["Subnets"],
            "vpcs": ec2.describe_vpcs()["Vpcs"],
        }
        self.assertEqual(json.dumps(after, sort_keys=True), json.dumps(before, sort_keys=True))
        self.assertEqual([s["SubnetId"] for s in after["subnets"]], [subnet["SubnetId"]])

        # A fresh server's untouched defaults keep their ids across restarts too.
        fresh = WharfServer()
        self.addCleanup(fresh.cleanup)
        fresh.start()
        first = fresh.aws("ec2", "describe-subnets")["Subnets"][0]["SubnetId"]
        fresh.restart()
        self.assertEqual(fresh.aws("ec2", "describe-subnets")["Subnets"][0]["SubnetId"], first)
        self.assertEqual(first, default_subnet["SubnetId"])


if __name__ == "__main__":
    unittest.main()
