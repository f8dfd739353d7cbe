"""Account settings: PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting and
ListAccountSettings, including effective settings and what new clusters inherit."""

import unittest

from harness import ACCOUNT, WharfTestCase

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


class AccountSettingTest(WharfTestCase):

    def region_client(self, region):
        # Account settings are regional; each test takes a region of its own.
        return self.server.client(region=region)

    def test_put_list_and_delete_own_setting(self):
        ecs = self.region_client("us-east-2")
        setting = ecs.put_account_setting(name="serviceLongArnFormat", value="disabled")["setting"]
        self.assertEqual(setting["name"], "serviceLongArnFormat")
        self.assertEqual(setting["value"], "disabled")
        self.assertEqual(setting["principalArn"], ROOT)

        own = ecs.list_account_settings()["settings"]
        self.assertEqual([(s["name"], s["value"]) for s in own],
                         [("serviceLongArnFormat", "disabled")])
        by_name = ecs.list_account_settings(name="serviceLongArnFormat")["settings"]
        self.assertEqual([(s["name"], s["value"], s["principalArn"]) for s in by_name],
                         [("serviceLongArnFormat", "disabled", ROOT)])
        by_value = ecs.list_account_settings(name="serviceLongArnFormat", value="enabled")
        self.assertEqual(by_value["settings"], [])

        ecs.delete_account_setting(name="serviceLongArnFormat")
        self.assertEqual(ecs.list_account_settings()["settings"], [])
        effective = ecs.list_account_settings(name="serviceLongArnFormat",
                                              effectiveSettings=True)["settings"]
        self.assertEqual([(s["name"], s["value"]) for s in effective],
                         [("serviceLongArnFormat", "enabled")])

    def test_effective_settings_cover_every_setting(self):
        ecs = self.region_client("us-west-1")
        settings, kwargs = [], {"effectiveSettings": True}
        while True:
            page = ecs.list_account_settings(**kwargs)
            settings.extend(page["settings"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        names = [s["name"] for s in settings]
        self.assertEqual(len(names), len(set(names)), names)
        for expected in ("serviceLongArnFormat", "taskLongArnFormat",
                         "containerInstanceLongArnFormat", "awsvpcTrunking", "containerInsights"):
            self.assertIn(expected, names)
        by_name = {s["name"]: s["value"] for s in settings}
        self.assertEqual(by_name["containerInsights"], "disabled")
        self.assertEqual(by_name["taskLongArnFormat"], "enabled")

    def test_effective_settings_page_with_max_results(self):
        ecs = self.region_client("us-west-1")
        everything = ecs.get_paginator("list_account_settings").paginate(effectiveSettings=True)
        all_names = [s["name"] for page in everything for s in page["settings"]]
        seen, kwargs = [], {"effectiveSettings": True, "maxResults": 3}
        while True:
            page = ecs.list_account_settings(**kwargs)
            self.assertLessEqual(len(page["settings"]), 3)
            seen.extend(s["name"] for s in page["settings"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        self.assertEqual(seen, all_names)

    def test_default_applies_until_principal_overrides(self):
        ecs = self.region_client("eu-west-2")
        default = ecs.put_account_setting_default(name="containerInsights",
                                                  value="enabled")["setting"]
        self.assertEqual((default["name"], default["value"]), ("containerInsights", "enabled"))
        effective = ecs.list_account_settings(name="containerInsights",
                                              effectiveSettings=True)["settings"]
        self.assertEqual([s["value"] for s in effective], ["enabled"])
        # New clusters follow the effective setting.
        cluster = ecs.create_cluster(clusterName="inherits")["cluster"]
        self.assertIn({"name": "containerInsights", "value": "enabled"}, cluster["settings"])

        # A principal's own setting beats the default.
        ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=ALICE)
        alice = ecs.list_account_settings(name="containerInsights", principalArn=ALICE,
                                          effectiveSettings=True)["settings"]
        self.assertEqual([(s["value"], s["principalArn"]) for s in alice], [("disabled", ALICE)])
        root = ecs.list_account_settings(name="containerInsights",
                                         effectiveSettings=True)["settings"]
        self.assertEqual([s["value"] for s in root], ["enabled"])
        ecs.delete_account_setting(name="containerInsights", principalArn=ALICE)
        alice = ecs.list_account_settings(name="containerInsights", principalArn=ALICE,
                                          effectiveSettings=True)["settings"]
        self.assertEqual([s["value"] for s in alice], ["enabled"])

    def test_root_principal_setting_applies_to_everyone(self):
        # PutAccountSetting: "If you specify the root user, it modifies the account setting for
        # all users, roles, and the root user of the account unless a user or role explicitly
        # overrides these settings."
        ecs = self.region_client("eu-west-3")
        ecs.put_account_setting(name="containerInsights", value="enabled", principalArn=ROOT)
        alice = ecs.list_account_settings(name="containerInsights", principalArn=ALICE,
                                          effectiveSettings=True)["settings"]
        self.assertEqual([s["value"] for s in alice], ["enabled"])
        ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=ALICE)
        alice = ecs.list_account_settings(name="containerInsights", principalArn=ALICE,
                                          effectiveSettings=True)["settings"]
        self.assertEqual([s["value"] for s in alice], ["disabled"])

    def test_settings_are_regional(self):
        ecs = self.region_client("ap-northeast-1")
        ecs.put_account_setting(name="awsvpcTrunking", value="enabled")
        elsewhere = self.region_client("ap-northeast-2").list_account_settings(
            name="awsvpcTrunking", effectiveSettings=True)["settings"]
        self.assertEqual([s["value"] for s in elsewhere], ["disabled"])

    def test_aws_cli(self):
        region = "sa-east-1"
        put = self.server.aws("ecs", "put-account-setting", "--name", "taskLongArnFormat",
                              "--value", "disabled", region=region)
        self.assertEqual(put["setting"]["value"], "disabled")
        listed = self.server.aws("ecs", "list-account-settings", "--name", "taskLongArnFormat",
                                 region=region)
        self.assertEqual([s["value"] for s in listed["settings"]], ["disabled"])

    def test_invalid_settings(self):
        ecs = self.region_client("eu-central-1")
        self.assertAwsError(lambda: ecs.put_account_setting(name="noSuchSetting", value="on"),
                            "InvalidParameterException")
        self.assertAwsError(lambda: ecs.put_account_setting(name="containerInsights",
                                                            value="sometimes"),
                            "InvalidParameterException")
        self.assertAwsError(lambda: ecs.put_account_setting_default(name="awsvpcTrunking",
                                                                    value="yes"),
                            "InvalidParameterException")
        self.assertAwsError(lambda: ecs.put_account_setting(
            name="containerInsights", value="enabled", principalArn="not-an-arn"),
            "InvalidParameterException")
        self.assertEqual(ecs.list_account_settings()["settings"], [])


if __name__ == "__main__":
    unittest.main()
