"""Paging: 250 task definition families walked page by page, and nextToken values that are
forged, garbled or borrowed from another listing."""

import base64
import concurrent.futures
import json
import unittest

from harness import WharfTestCase

FAMILY_COUNT = 250


def family_name(index):
    return f"family-{index:03d}"


class PagingTest(WharfTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def register(indexes):
            ecs = cls.server.client()
            for index in indexes:
                ecs.register_task_definition(
                    family=family_name(index),
                    containerDefinitions=[{"name": "main", "image": "busybox", "memory": 64}])

        workers = 8
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for done in [pool.submit(register, range(worker, FAMILY_COUNT, workers))
                         for worker in range(workers)]:
                done.result()
        # Two revisions of one family and one family with no ACTIVE revision, for the filters.
        cls.ecs.register_task_definition(
            family=family_name(0),
            containerDefinitions=[{"name": "main", "image": "busybox", "memory": 64}])
        cls.ecs.deregister_task_definition(taskDefinition=f"{family_name(1)}:1")

    def walk_families(self, page_size, **filters):
        seen, pages, kwargs = [], 0, dict(filters, maxResults=page_size)
        while True:
            page = self.ecs.list_task_definition_families(**kwargs)
            pages += 1
            self.assertLessEqual(len(page["families"]), page_size)
            seen.extend(page["families"])
            token = page.get("nextToken")
            if not token:
                return seen, pages
            kwargs["nextToken"] = token
            self.assertLess(pages, 1000, "paging does not end")

    def test_every_family_exactly_once(self):
        expected = [family_name(index) for index in range(FAMILY_COUNT)]
        for page_size in (7, 100):
            with self.subTest(page_size=page_size):
                seen, pages = self.walk_families(page_size)
                self.assertEqual(len(seen), len(set(seen)), "a family came back twice")
                self.assertEqual(sorted(seen), expected)
                self.assertEqual(pages, -(-FAMILY_COUNT // page_size))

    def test_default_page_size_and_paginator(self):
        first = self.ecs.list_task_definition_families()
        self.assertEqual(len(first["families"]), 100)
        self.assertTrue(first.get("nextToken"))
        paginated = [family for page in self.ecs.get_paginator(
            "list_task_definition_families").paginate(PaginationConfig={"PageSize": 33})
            for family in page["families"]]
        self.assertEqual(sorted(paginated), [family_name(i) for i in range(FAMILY_COUNT)])

    def test_paging_with_filters(self):
        seen, _ = self.walk_families(4, familyPrefix="family-01")
        self.assertEqual(seen, [family_name(index) for index in range(10, 20)])
        active, _ = self.walk_families(9, status="ACTIVE")
        self.assertEqual(len(active), FAMILY_COUNT - 1)
        self.assertNotIn(family_name(1), active)
        inactive, _ = self.walk_families(9, status="INACTIVE")
        self.assertEqual(inactive, [family_name(1)])

    def test_list_task_definitions_walks_all_revisions(self):
        seen, kwargs = [], {"maxResults": 40}
        while True:
            page = self.ecs.list_task_definitions(**kwargs)
            seen.extend(page["taskDefinitionArns"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        # 250 first revisions, one second revision, minus the deregistered one.
        self.assertEqual(len(seen), FAMILY_COUNT)
        self.assertEqual(len(set(seen)), len(seen))

    def test_garbled_tokens_are_invalid_parameter(self):
        token = self.ecs.list_task_definition_families(maxResults=5)["nextToken"]
        payload, _, signature = token.partition(".")
        padded = payload + "=" * (-len(payload) % 4)
        decoded = base64.urlsafe_b64decode(padded) if signature else b""
        forged_payload = base64.urlsafe_b64encode(
            decoded.replace(b"family-004", b"family-200")).rstrip(b"=").decode()
        flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        garbled = {
            "random text": "this-is-not-a-token",
            "truncated": token[: len(token) // 2],
            "one character changed": flipped,
            "forged payload with the old signature": f"{forged_payload}.{signature}",
            "unsigned json": base64.b64encode(json.dumps({"k": "family-100"}).encode()).decode(),
            "empty signature": f"{payload}.",
            "extra suffix": token + "x",
        }
        for name, bad in garbled.items():
            with self.subTest(name):
                self.assertAwsError(
                    lambda: self.ecs.list_task_definition_families(maxResults=5, nextToken=bad),
                    "InvalidParameterException")

    def test_tokens_from_other_listings_are_invalid_parameter(self):
        prefix_token = self.ecs.list_task_definition_families(
            familyPrefix="family-1", maxResults=5)["nextToken"]
        status_token = self.ecs.list_task_definition_families(
            status="ACTIVE", maxResults=5)["nextToken"]
        revisions_token = self.ecs.list_task_definitions(maxResults=5)["nextToken"]
        self.ecs.create_cluster(clusterName="c1")
        self.ecs.create_cluster(clusterName="c2")
        clusters_token = self.ecs.list_clusters(maxResults=1)["nextToken"]

        cases = {
            "other familyPrefix": (self.ecs.list_task_definition_families,
                                   {"familyPrefix": "family-2"}, prefix_token),
            "no familyPrefix": (self.ecs.list_task_definition_families, {}, prefix_token),
            "other status": (self.ecs.list_task_definition_families,
                             {"status": "INACTIVE"}, status_token),
            "ListTaskDefinitions token": (self.ecs.list_task_definition_families, {},
                                          revisions_token),
            "ListClusters token": (self.ecs.list_task_definition_families, {}, clusters_token),
            "families token on ListTaskDefinitions": (self.ecs.list_task_definitions, {},
                                                      prefix_token),
            "other sort order": (self.ecs.list_task_definitions, {"sort": "DESC"},
                                 revisions_token),
            "families token on ListClusters": (self.ecs.list_clusters, {}, status_token),
        }
        for name, (operation, filters, token) in cases.items():
            with self.subTest(name):
                self.assertAwsError(lambda: operation(nextToken=token, **filters),
                                    "InvalidParameterException")
        # Each token still works where it came from.
        self.assertTrue(self.ecs.list_task_definition_families(
            familyPrefix="family-1", nextToken=prefix_token)["families"])

    def test_max_results_out_of_range(self):
        for bad in (0, 101, -1):
            with self.subTest(maxResults=bad):
                self.assertAwsError(
                    lambda: self.ecs.list_task_definition_families(maxResults=bad),
                    "InvalidParameterException")


if __name__ == "__main__":
    unittest.main()
