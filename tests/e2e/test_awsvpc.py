"""awsvpc tasks on real agents: each task its own namespace and address from an EC2 subnet,
reported as an ENI attachment; containers of a task share localhost; other tasks and the host
reach it by address as its security groups allow (nftables), rule changes apply to running tasks;
the metadata endpoint at 169.254.170.2 inside the task; nothing left behind after an agent crash.
"""

import os
import subprocess
import time
import unittest

from harness import WharfAgent, tcp
from test_tasks import (AGENT_ARGS, AgentTestCase, http_get, links, needs_root_and_runc,
                        netns_names, nft_ruleset)

HTTPD = "busybox mkdir -p /www; echo {body} > /www/index.html; "


@unittest.skipIf(needs_root_and_runc(), needs_root_and_runc())
class AwsvpcTest(AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ec2 = cls.server.client("ec2")
        cls.subnet = cls.ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]

    def network(self, *groups):
        config = {"subnets": [self.subnet]}
        if groups:
            config["securityGroups"] = list(groups)
        return {"awsvpcConfiguration": config}

    def group(self, name, *ports):
        group_id = self.ec2.create_security_group(GroupName=f"{name}-{time.time_ns()}",
                                                  Description=name)["GroupId"]
        for port in ports:
            self.allow(group_id, port)
        return group_id

    def allow(self, group_id, port):
        self.ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[tcp(port, ["0.0.0.0/0"])])

    def run_awsvpc(self, containers, *groups):
        family = self.register(containers, network_mode="awsvpc")
        [arn] = self.run_task(family, networkConfiguration=self.network(*groups))
        task = self.wait_status("prod", arn, "RUNNING")
        return arn, task

    @staticmethod
    def address(task):
        [attachment] = task["attachments"]
        details = {detail["name"]: detail["value"] for detail in attachment["details"]}
        return details["privateIPv4Address"]

    def log_of(self, arn, container):
        with open(os.path.join(self.log_dir(arn, container), "stdout")) as out:
            return out.read()

    # --- tests ------------------------------------------------------------------------------

    def test_a_task_is_reached_by_its_address_as_its_group_allows(self):
        group_id = self.group("web", 80)
        arn, task = self.run_awsvpc([{
            "name": "web", "entryPoint": ["sh", "-c"],
            "command": [HTTPD.format(body="vpc") + "httpd -p 81 -h /www; exec httpd -f -p 80 -h /www"]}],
            group_id)
        [attachment] = task["attachments"]
        self.assertEqual(attachment["type"], "ElasticNetworkInterface")
        self.assertEqual(attachment["status"], "ATTACHED")
        details = {detail["name"]: detail["value"] for detail in attachment["details"]}
        self.assertEqual(details["subnetId"], self.subnet)
        self.assertTrue(details["networkInterfaceId"].startswith("eni-"))
        address = details["privateIPv4Address"]
        self.assertTrue(address.startswith("172.31."), address)
        [interface] = self.container(task, "web")["networkInterfaces"]
        self.assertEqual(interface["privateIpv4Address"], address)
        self.assertEqual(interface["attachmentId"], attachment["id"])

        # Port 80 is allowed; 81 is not, until a rule admits it (applied to the running task).
        self.assertEqual(self.wait_for(lambda: http_get(f"http://{address}:80/"), "port 80"),
                         "vpc\n")
        self.assertIsNone(http_get(f"http://{address}:81/"))
        self.allow(group_id, 81)
        self.assertEqual(self.wait_for(lambda: http_get(f"http://{address}:81/"), "port 81",
                                       timeout=10), "vpc\n")
        self.ec2.revoke_security_group_ingress(
            GroupId=group_id, IpPermissions=[tcp(81, ["0.0.0.0/0"])])
        self.wait_for(lambda: http_get(f"http://{address}:81/") is None, "port 81 closed",
                      timeout=10)

        self.ecs.stop_task(cluster="prod", task=arn)
        stopped = self.wait_status("prod", arn, "STOPPED")
        self.assertEqual(stopped["attachments"][0]["status"], "DETACHED")
        self.assertIsNone(http_get(f"http://{address}:80/"))

    def test_containers_of_a_task_share_localhost(self):
        arn, _ = self.run_awsvpc([
            {"name": "server", "entryPoint": ["sh", "-c"],
             "command": [HTTPD.format(body="local") + "exec httpd -f -p 127.0.0.1:8000 -h /www"]},
            {"name": "client", "entryPoint": ["sh", "-c"],
             "command": ["until wget -qO- http://127.0.0.1:8000/; do sleep 0.1; done; sleep 60"]}])
        self.assertEqual(self.wait_for(lambda: self.log_of(arn, "client"), "the client's read"),
                         "local\n")

    def test_tasks_in_the_default_group_reach_each_other(self):
        # The default group admits its own members and nothing else.
        _, server = self.run_awsvpc([{
            "name": "web", "entryPoint": ["sh", "-c"],
            "command": [HTTPD.format(body="peer") + "exec httpd -f -p 80 -h /www"]}])
        address = self.address(server)
        client_arn, _ = self.run_awsvpc([{
            "name": "client", "entryPoint": ["sh", "-c"],
            "command": [f"until wget -qO- http://{address}/; do sleep 0.1; done; sleep 60"]}])
        self.assertEqual(self.wait_for(lambda: self.log_of(client_arn, "client"), "a peer's read"),
                         "peer\n")
        self.assertIsNone(http_get(f"http://{address}/"))  # the host is not a member

    def test_the_metadata_endpoint_in_awsvpc_mode(self):
        task, seen = self.metadata_seen_from_inside("awsvpc", networkConfiguration=self.network())
        container, _ = self.check_metadata(task, seen)
        network = container["Networks"][0]
        self.assertEqual(network["NetworkMode"], "awsvpc")
        self.assertEqual(network["IPv4Addresses"], [self.address(task)])
        self.assertEqual(network["IPv4SubnetCIDRBlock"], "172.31.0.0/20")
        self.assertTrue(seen[4].startswith("http://169.254.170.2:"), seen[4])

    def test_bad_network_configuration_is_refused(self):
        family = self.register([{"name": "app", "command": ["sleep", "60"]}],
                               network_mode="awsvpc")
        for config, words in (
                (None, "Network Configuration must be provided"),
                ({"awsvpcConfiguration": {"subnets": ["subnet-00000000000000000"]}},
                 "InvalidSubnetID.NotFound"),
                ({"awsvpcConfiguration": {"subnets": [self.subnet],
                                          "securityGroups": ["sg-00000000000000000"]}},
                 "InvalidGroup.NotFound")):
            extra = {} if config is None else {"networkConfiguration": config}
            with self.assertRaises(self.ecs.exceptions.InvalidParameterException) as caught:
                self.ecs.run_task(cluster="prod", taskDefinition=family, **extra)
            self.assertIn(words, str(caught.exception))

    def test_nothing_is_left_after_an_agent_crash(self):
        self.ecs.create_cluster(clusterName="vpc-crash")
        agent = WharfAgent(self.server, "vpc-crash", extra_args=AGENT_ARGS)
        self.addCleanup(agent.cleanup)
        agent.start()
        agent.wait_registered()
        suffix = agent.instance_id()[-10:]
        family = self.register([{"name": "app", "command": ["sleep", "600"]}],
                               network_mode="awsvpc")
        [arn] = self.run_task(family, cluster="vpc-crash", networkConfiguration=self.network())
        task = self.wait_status("vpc-crash", arn, "RUNNING")
        address = self.address(task)
        self.assertTrue([name for name in netns_names() if name.startswith(f"wharfvpc-{suffix}")])
        self.assertIn(f"wharfvpc-{suffix}", links())
        agent.kill9()
        self.ecs.stop_task(cluster="vpc-crash", task=arn)  # while no agent listens
        agent.start()
        agent.wait_registered()
        self.wait_status("vpc-crash", arn, "STOPPED")
        agent.stop()
        self.assertFalse([name for name in netns_names() if name.startswith(f"wharfvpc-{suffix}")])
        self.assertNotIn(f"wharfvpc_{suffix}", nft_ruleset())
        self.assertNotIn(f"wharfvpc-{suffix}", links())  # host veths carry their netns as alias
        self.assertNotIn(address, subprocess.run(["ip", "route"], capture_output=True,
                                                 text=True).stdout)


if __name__ == "__main__":
    unittest.main()
