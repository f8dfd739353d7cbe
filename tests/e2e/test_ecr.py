"""The ECR API (src/registry/ecr_*): every operation Wharf implements, with its success and error
cases (exception name and HTTP status), through boto3 and the real aws CLI; skopeo logging in
with `aws ecr get-login-password` and pushing umoci-built images through /v2/; immutable tags;
lifecycle policies that really delete images; image scans against an operator database."""

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest

from botocore.exceptions import ClientError

from harness import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, WharfServer, WharfTestCase

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

VULNERABLE_PACKAGE = "wharf-demo"
VULNERABILITY_DATABASE = {
    "updatedAt": "2024-06-01T00:00:00Z",
    "vulnerabilities": [
        {"id": "CVE-2099-0001", "severity": "HIGH", "package": VULNERABLE_PACKAGE,
         "os": "debian:12", "fixedVersion": "1.1-1", "description": "A demo vulnerability.",
         "uri": "https://security.example/CVE-2099-0001", "cvss2Score": 7.5,
         "cvss2Vector": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
        {"id": "CVE-2099-0002", "severity": "LOW", "package": VULNERABLE_PACKAGE,
         "os": "debian:12", "fixedVersion": "0.9-1"},
        {"id": "CVE-2099-0003", "severity": "CRITICAL", "package": "openssl", "os": "alpine"},
    ],
}
DEBIAN_FILES = {
    "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    "var/lib/dpkg/status": (f"Package: {VULNERABLE_PACKAGE}\nStatus: install ok installed\n"
                            "Version: 1.0-1\nArchitecture: amd64\n\n"
                            "Package: base-files\nStatus: install ok installed\n"
                            "Version: 12.4+deb12u5\nArchitecture: amd64\n"),
}


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files):
    """A gzip-compressed layer tar holding `files` (path → text); byte-for-byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def run(*args, input=None, env=None):
    result = subprocess.run(list(args), input=input, env=env, capture_output=True, text=True,
                            timeout=180)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def build_oci_image(workdir, files=None, seed=None):
    """An OCI image layout at WORKDIR/layout (image "latest") made with umoci: empty, or with one
    layer of `files`; `seed` goes into the config so that images differ."""
    layout = os.path.join(workdir, "layout")
    image = layout + ":latest"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", image)
    if files:
        bundle = os.path.join(workdir, "bundle")
        run("umoci", "unpack", "--rootless", "--image", image, bundle)
        for path, text in files.items():
            target = os.path.join(bundle, "rootfs", path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as file:
                file.write(text)
        run("umoci", "repack", "--image", image, bundle)
    if seed:
        run("umoci", "config", "--image", image, "--config.env", f"WHARF_SEED={seed}")
    return layout


class EcrTestBase(WharfTestCase):
    """A server with a short lifecycle interval and (optionally) a vulnerability database."""

    database = VULNERABILITY_DATABASE

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="wharf-ecr-e2e-")
        cls.addClassCleanup(shutil.rmtree, cls.workdir, ignore_errors=True)
        extra = ["--lifecycle-interval-seconds", "1"]
        if cls.database is not None:
            database_path = os.path.join(cls.workdir, "vulnerabilities.json")
            with open(database_path, "w") as file:
                json.dump(cls.database, file)
            extra += ["--scan-database", database_path]
        cls.server = WharfServer(extra_args=extra)
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.ecr = cls.server.client("ecr")
        cls.registry = f"127.0.0.1:{cls.server.port}"
        cls.authfile = os.path.join(cls.workdir, "auth.json")
        cls.image_count = 0

    # ---- helpers ----

    def create(self, name, **settings):
        return self.ecr.create_repository(repositoryName=name, **settings)["repository"]

    def upload(self, repository, data):
        """Uploads a blob through Initiate/UploadLayerPart/CompleteLayerUpload in two parts."""
        upload_id = self.ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
        half = len(data) // 2
        for first, part in ((0, data[:half]), (half, data[half:])):
            if not part:
                continue
            answer = self.ecr.upload_layer_part(
                repositoryName=repository, uploadId=upload_id, partFirstByte=first,
                partLastByte=first + len(part) - 1, layerPartBlob=part)
            self.assertEqual(answer["lastByteReceived"], first + len(part) - 1)
        done = self.ecr.complete_layer_upload(repositoryName=repository, uploadId=upload_id,
                                              layerDigests=[sha256(data)])
        self.assertEqual(done["layerDigest"], sha256(data))
        return sha256(data)

    def api_manifest(self, repository, files=None, seed="x"):
        """Uploads a config and one layer through the ECR API; returns the manifest text."""
        layer = layer_tar(files or {"seed": seed})
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": [seed]},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        checked = self.ecr.batch_check_layer_availability(
            repositoryName=repository, layerDigests=[sha256(layer), sha256(config)])
        present = {layer["layerDigest"] for layer in checked["layers"]}
        for blob in (layer, config):
            if sha256(blob) not in present:
                self.upload(repository, blob)
        return json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}]})

    def put(self, repository, manifest, tag=None):
        args = {"repositoryName": repository, "imageManifest": manifest}
        if tag:
            args["imageTag"] = tag
        return self.ecr.put_image(**args)["image"]["imageId"]["imageDigest"]

    def login(self):
        """`aws ecr get-login-password | skopeo login …`, as the ECR user guide says."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=self.server.endpoint,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_MAX_ATTEMPTS="1", AWS_PAGER="", AUTHFILE=self.authfile,
                   REGISTRY=self.registry)
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c",
             'aws ecr get-login-password | skopeo login --tls-verify=false --authfile "$AUTHFILE" '
             '--username AWS --password-stdin "$REGISTRY"'],
            env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Login Succeeded", result.stdout)

    def skopeo_push(self, layout, repository, tag, check=True):
        self.login()
        result = subprocess.run(
            ["skopeo", "copy", "--dest-tls-verify=false", "--dest-authfile", self.authfile,
             f"oci:{layout}:latest", f"docker://{self.registry}/{repository}:{tag}"],
            capture_output=True, text=True, timeout=180)
        if check:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def new_oci_image(self, files=None):
        """A fresh umoci image, different from every earlier one."""
        type(self).image_count += 1
        workdir = os.path.join(self.workdir, f"image-{self.image_count}")
        os.makedirs(workdir)
        return build_oci_image(workdir, files, seed=str(self.image_count))

    def image_digests(self, repository, tag_status="ANY"):
        listed = self.ecr.list_images(repositoryName=repository, filter={"tagStatus": tag_status})
        return sorted(image["imageDigest"] for image in listed["imageIds"])

    def wait_for(self, predicate, timeout=20, message="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        self.fail(f"timed out waiting for {message}")

    def scan(self, repository, tag):
        self.ecr.start_image_scan(repositoryName=repository, imageId={"imageTag": tag})
        self.ecr.get_waiter("image_scan_complete").wait(
            repositoryName=repository, imageId={"imageTag": tag},
            WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return self.ecr.describe_image_scan_findings(repositoryName=repository,
                                                     imageId={"imageTag": tag})


class RepositoryTest(EcrTestBase):

    def test_create_describe_delete(self):
        created = self.create(
            "team/service", imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/wharf"},
            tags=[{"Key": "team", "Value": "core"}])
        self.assertEqual(created["repositoryArn"],
                         f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team/service")
        self.assertEqual(created["registryId"], ACCOUNT)
        self.assertEqual(created["repositoryUri"], f"{self.registry}/team/service")
        self.assertEqual(created["imageTagMutability"], "IMMUTABLE")
        self.assertTrue(created["imageScanningConfiguration"]["scanOnPush"])
        self.assertEqual(created["encryptionConfiguration"],
                         {"encryptionType": "KMS", "kmsKey": "alias/wharf"})
        self.assertIsInstance(created["createdAt"], datetime.datetime)

        described = self.ecr.describe_repositories(repositoryNames=["team/service"])
        self.assertEqual(described["repositories"][0]["repositoryArn"], created["repositoryArn"])
        self.assertAwsError(lambda: self.create("team/service"), "RepositoryAlreadyExistsException")
        self.assertAwsError(lambda: self.ecr.describe_repositories(repositoryNames=["nope"]),
                            "RepositoryNotFoundException", message="'nope'")

        self.ecr.delete_repository(repositoryName="team/service")
        self.assertAwsError(lambda: self.ecr.delete_repository(repositoryName="team/service"),
                            "RepositoryNotFoundException")

    def test_repository_names_follow_the_pattern(self):
        unvalidated = self.server.client("ecr", validate=False)  # boto3 checks lengths itself
        for bad in ("Upper", "trailing-", "a//b", "-lead", "a..b", "x"):
            self.assertAwsError(lambda: unvalidated.create_repository(repositoryName=bad),
                                "InvalidParameterException")
        for good in ("a0", "a.b_c-d", "x/y/z", "a__b", "a---b"):
            self.create(good)

    def test_delete_needs_force_when_images_remain(self):
        self.create("not-empty")
        self.put("not-empty", self.api_manifest("not-empty"), "v1")
        self.assertAwsError(lambda: self.ecr.delete_repository(repositoryName="not-empty"),
                            "RepositoryNotEmptyException")
        deleted = self.ecr.delete_repository(repositoryName="not-empty", force=True)
        self.assertEqual(deleted["repository"]["repositoryName"], "not-empty")
        self.assertAwsError(lambda: self.ecr.list_images(repositoryName="not-empty"),
                            "RepositoryNotFoundException")

    def test_describe_repositories_pages(self):
        names = [f"paged/repo-{index:02d}" for index in range(7)]
        for name in names:
            self.create(name)
        seen = []
        for page in self.ecr.get_paginator("describe_repositories").paginate(
                PaginationConfig={"PageSize": 3}):
            self.assertLessEqual(len(page["repositories"]), 3)
            seen += [repo["repositoryName"] for repo in page["repositories"]]
        for name in names:
            self.assertIn(name, seen)
        self.assertAwsError(lambda: self.ecr.describe_repositories(repositoryNames=[names[0]],
                                                                   maxResults=2),
                            "InvalidParameterException")
        self.assertAwsError(lambda: self.ecr.describe_repositories(nextToken="forged"),
                            "InvalidParameterException")

    def test_repositories_belong_to_a_region(self):
        self.create("regional")
        other = self.server.client("ecr", region="eu-west-1")
        self.assertAwsError(lambda: other.describe_repositories(repositoryNames=["regional"]),
                            "RepositoryNotFoundException")

    def test_via_aws_cli(self):
        created = self.server.aws("ecr", "create-repository", "--repository-name", "cli/repo",
                                  "--image-scanning-configuration", "scanOnPush=true")
        self.assertEqual(created["repository"]["repositoryName"], "cli/repo")
        failed = self.server.aws("ecr", "create-repository", "--repository-name", "cli/repo",
                                 check=False)
        self.assertNotEqual(failed.returncode, 0)
        self.assertIn("RepositoryAlreadyExistsException", failed.stderr)
        listed = self.server.aws("ecr", "describe-repositories")
        self.assertIn("cli/repo", [repo["repositoryName"] for repo in listed["repositories"]])

    def test_tag_mutability_and_scanning_configuration(self):
        self.create("settings")
        answer = self.ecr.put_image_tag_mutability(repositoryName="settings",
                                                   imageTagMutability="IMMUTABLE")
        self.assertEqual(answer["imageTagMutability"], "IMMUTABLE")
        answer = self.ecr.put_image_scanning_configuration(
            repositoryName="settings", imageScanningConfiguration={"scanOnPush": True})
        self.assertTrue(answer["imageScanningConfiguration"]["scanOnPush"])
        repository = self.ecr.describe_repositories(repositoryNames=["settings"])["repositories"][0]
        self.assertEqual(repository["imageTagMutability"], "IMMUTABLE")
        self.assertTrue(repository["imageScanningConfiguration"]["scanOnPush"])
        self.assertAwsError(lambda: self.ecr.put_image_tag_mutability(
            repositoryName="settings", imageTagMutability="MUTABLE_WITH_EXCLUSION"),
            "InvalidParameterException")
        self.assertAwsError(lambda: self.ecr.put_image_tag_mutability(
            repositoryName="missing", imageTagMutability="MUTABLE"),
            "RepositoryNotFoundException")
        self.assertAwsError(lambda: self.ecr.put_image_scanning_configuration(
            repositoryName="missing", imageScanningConfiguration={"scanOnPush": True}),
            "RepositoryNotFoundException")

    def test_repository_policy(self):
        self.create("with-policy")
        self.assertAwsError(lambda: self.ecr.get_repository_policy(repositoryName="with-policy"),
                            "RepositoryPolicyNotFoundException")
        self.assertAwsError(lambda: self.ecr.delete_repository_policy(repositoryName="with-policy"),
                            "RepositoryPolicyNotFoundException")
        self.assertAwsError(lambda: self.ecr.set_repository_policy(
            repositoryName="with-policy", policyText="not json"), "InvalidParameterException")
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "pull", "Effect": "Allow", "Principal": "*",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})
        answer = self.ecr.set_repository_policy(repositoryName="with-policy", policyText=policy)
        self.assertEqual(answer["policyText"], policy)
        self.assertEqual(self.ecr.get_repository_policy(repositoryName="with-policy")["policyText"],
                         policy)
        self.assertEqual(
            self.ecr.delete_repository_policy(repositoryName="with-policy")["policyText"], policy)
        self.assertAwsError(lambda: self.ecr.set_repository_policy(
            repositoryName="missing", policyText=policy), "RepositoryNotFoundException")

    def test_tags(self):
        arn = self.create("tagged", tags=[{"Key": "a", "Value": "1"}])["repositoryArn"]
        self.ecr.tag_resource(resourceArn=arn, tags=[{"Key": "b", "Value": "2"}])
        self.ecr.untag_resource(resourceArn=arn, tagKeys=["a"])
        self.assertEqual(self.ecr.list_tags_for_resource(resourceArn=arn)["tags"],
                         [{"Key": "b", "Value": "2"}])
        self.assertAwsError(lambda: self.ecr.tag_resource(
            resourceArn=arn, tags=[{"Key": "aws:reserved", "Value": "x"}]),
            "InvalidTagParameterException")
        self.assertAwsError(lambda: self.ecr.tag_resource(
            resourceArn=arn, tags=[{"Key": f"k{index}", "Value": "v"} for index in range(50)]),
            "TooManyTagsException")
        self.assertAwsError(lambda: self.create(
            "too-many-tags", tags=[{"Key": f"k{index}", "Value": "v"} for index in range(51)]),
            "TooManyTagsException")
        missing = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/not-there"
        self.assertAwsError(lambda: self.ecr.list_tags_for_resource(resourceArn=missing),
                            "RepositoryNotFoundException")
        self.assertAwsError(lambda: self.ecr.tag_resource(
            resourceArn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/x",
            tags=[{"Key": "a", "Value": "1"}]), "InvalidParameterException")

    def test_describe_registry_and_authorization_token(self):
        registry = self.ecr.describe_registry()
        self.assertEqual(registry["registryId"], ACCOUNT)
        self.assertEqual(registry["replicationConfiguration"], {"rules": []})
        data = self.ecr.get_authorization_token()["authorizationData"]
        self.assertEqual(len(data), 1)
        user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
        self.assertEqual(user, "AWS")
        self.assertTrue(password)
        self.assertEqual(data[0]["proxyEndpoint"], self.server.endpoint)
        lifetime = data[0]["expiresAt"] - datetime.datetime.now(datetime.timezone.utc)
        self.assertGreater(lifetime, datetime.timedelta(hours=11))
        self.assertLess(lifetime, datetime.timedelta(hours=13))
        two = self.ecr.get_authorization_token(registryIds=[ACCOUNT, "210987654321"])
        self.assertEqual(len(two["authorizationData"]), 2)
        self.assertAwsError(lambda: self.ecr.get_authorization_token(registryIds=["12"]),
                            "InvalidParameterException")
        # The token works as Basic credentials on /v2/.
        status = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
             "Authorization: Basic " + data[0]["authorizationToken"],
             f"{self.server.endpoint}/v2/"], capture_output=True, text=True, timeout=60)
        self.assertEqual(status.stdout, "200")


class LayerAndImageTest(EcrTestBase):

    def test_layer_uploads(self):
        self.create("layers")
        data = os.urandom(3000)
        digest = self.upload("layers", data)
        checked = self.ecr.batch_check_layer_availability(
            repositoryName="layers", layerDigests=[digest, sha256(b"absent"), "not-a-digest"])
        self.assertEqual(checked["layers"],
                         [{"layerDigest": digest, "layerAvailability": "AVAILABLE",
                           "layerSize": 3000}])
        self.assertEqual([(failure["layerDigest"], failure["failureCode"])
                          for failure in checked["failures"]],
                         [(sha256(b"absent"), "MissingLayerDigest"),
                          ("not-a-digest", "InvalidLayerDigest")])
        url = self.ecr.get_download_url_for_layer(repositoryName="layers", layerDigest=digest)
        self.assertEqual(url["downloadUrl"], f"{self.server.endpoint}/v2/layers/blobs/{digest}")
        self.assertAwsError(lambda: self.ecr.get_download_url_for_layer(
            repositoryName="layers", layerDigest=sha256(b"absent")), "LayersNotFoundException")

        # The same layer again.
        upload_id = self.ecr.initiate_layer_upload(repositoryName="layers")["uploadId"]
        self.ecr.upload_layer_part(repositoryName="layers", uploadId=upload_id, partFirstByte=0,
                                   partLastByte=len(data) - 1, layerPartBlob=data)
        self.assertAwsError(lambda: self.ecr.complete_layer_upload(
            repositoryName="layers", uploadId=upload_id, layerDigests=[digest]),
            "LayerAlreadyExistsException")

        # Parts must be contiguous and match their byte range.
        upload_id = self.ecr.initiate_layer_upload(repositoryName="layers")["uploadId"]
        self.assertAwsError(lambda: self.ecr.upload_layer_part(
            repositoryName="layers", uploadId=upload_id, partFirstByte=10, partLastByte=13,
            layerPartBlob=b"abcd"), "InvalidLayerPartException")
        self.assertAwsError(lambda: self.ecr.upload_layer_part(
            repositoryName="layers", uploadId=upload_id, partFirstByte=0, partLastByte=99,
            layerPartBlob=b"abcd"), "InvalidLayerPartException")
        self.assertAwsError(lambda: self.ecr.complete_layer_upload(
            repositoryName="layers", uploadId=upload_id, layerDigests=[sha256(b"")]),
            "EmptyUploadException")
        self.assertAwsError(lambda: self.ecr.upload_layer_part(
            repositoryName="layers", uploadId="no-such-upload", partFirstByte=0, partLastByte=3,
            layerPartBlob=b"abcd"), "UploadNotFoundException")

        # A digest that does not match the bytes.
        upload_id = self.ecr.initiate_layer_upload(repositoryName="layers")["uploadId"]
        self.ecr.upload_layer_part(repositoryName="layers", uploadId=upload_id, partFirstByte=0,
                                   partLastByte=3, layerPartBlob=b"abcd")
        self.assertAwsError(lambda: self.ecr.complete_layer_upload(
            repositoryName="layers", uploadId=upload_id, layerDigests=[sha256(b"dcba")]),
            "InvalidLayerException")
        self.assertAwsError(lambda: self.ecr.initiate_layer_upload(repositoryName="missing"),
                            "RepositoryNotFoundException")

    def test_put_image(self):
        self.create("put")
        manifest = self.api_manifest("put", seed="one")
        image = self.ecr.put_image(repositoryName="put", imageManifest=manifest, imageTag="v1")
        self.assertEqual(image["image"]["imageId"],
                         {"imageDigest": sha256(manifest.encode()), "imageTag": "v1"})
        self.assertEqual(image["image"]["imageManifestMediaType"], OCI_MANIFEST)
        self.assertEqual(image["image"]["registryId"], ACCOUNT)
        self.assertAwsError(lambda: self.put("put", manifest, "v1"), "ImageAlreadyExistsException")
        self.put("put", manifest, "second-tag")
        self.assertAwsError(lambda: self.ecr.put_image(
            repositoryName="put", imageManifest=manifest, imageDigest=sha256(b"other")),
            "ImageDigestDoesNotMatchException")
        absent_layer = json.loads(manifest)
        absent_layer["layers"][0]["digest"] = sha256(b"never uploaded")
        self.assertAwsError(lambda: self.put("put", json.dumps(absent_layer)),
                            "LayersNotFoundException")
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha256(b"no such manifest"), "size": 10}]})
        self.assertAwsError(lambda: self.put("put", index), "ReferencedImagesNotFoundException")
        self.assertAwsError(lambda: self.put("put", "not json"), "InvalidParameterException")
        self.assertAwsError(lambda: self.put("missing", manifest), "RepositoryNotFoundException")
        # An index over the pushed image is fine.
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha256(manifest.encode()),
             "size": len(manifest)}]})
        self.put("put", index, "multi")

    def test_immutable_tags_refuse_put_image(self):
        self.create("immutable-api", imageTagMutability="IMMUTABLE")
        self.put("immutable-api", self.api_manifest("immutable-api", seed="a"), "v1")
        other = self.api_manifest("immutable-api", seed="b")
        self.assertAwsError(lambda: self.put("immutable-api", other, "v1"),
                            "ImageTagAlreadyExistsException", message="immutable")
        self.put("immutable-api", other, "v2")

    def test_list_describe_get_delete(self):
        self.create("images")
        first = self.put("images", self.api_manifest("images", seed="1"), "v1")
        second = self.put("images", self.api_manifest("images", seed="2"), "v2")
        untagged = self.put("images", self.api_manifest("images", seed="3"))
        self.assertEqual(self.image_digests("images", "UNTAGGED"), [untagged])
        self.assertEqual(self.image_digests("images", "TAGGED"), sorted([first, second]))
        pages = list(self.ecr.get_paginator("list_images").paginate(
            repositoryName="images", PaginationConfig={"PageSize": 2}))
        self.assertEqual(sum(len(page["imageIds"]) for page in pages), 3)
        self.assertEqual(len(pages), 2)

        detail = self.ecr.describe_images(repositoryName="images",
                                          imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
        self.assertEqual(detail["imageDigest"], first)
        self.assertEqual(detail["imageTags"], ["v1"])
        self.assertEqual(detail["imageManifestMediaType"], OCI_MANIFEST)
        self.assertEqual(detail["artifactMediaType"], OCI_CONFIG)
        self.assertGreater(detail["imageSizeInBytes"], 0)
        self.assertIsInstance(detail["imagePushedAt"], datetime.datetime)
        self.assertNotIn("lastRecordedPullTime", detail)
        self.assertAwsError(lambda: self.ecr.describe_images(
            repositoryName="images", imageIds=[{"imageTag": "nope"}]), "ImageNotFoundException")
        self.assertAwsError(lambda: self.ecr.describe_images(repositoryName="missing"),
                            "RepositoryNotFoundException")
        untagged_only = self.ecr.describe_images(repositoryName="images",
                                                 filter={"tagStatus": "UNTAGGED"})
        self.assertEqual([d["imageDigest"] for d in untagged_only["imageDetails"]], [untagged])

        got = self.ecr.batch_get_image(repositoryName="images", imageIds=[
            {"imageTag": "v2"}, {"imageTag": "absent"}, {"imageDigest": "sha256:bad"}])
        self.assertEqual([image["imageId"]["imageDigest"] for image in got["images"]], [second])
        self.assertEqual(json.loads(got["images"][0]["imageManifest"])["mediaType"], OCI_MANIFEST)
        self.assertEqual(sorted(failure["failureCode"] for failure in got["failures"]),
                         ["ImageNotFound", "InvalidImageDigest"])
        refused = self.ecr.batch_get_image(repositoryName="images", imageIds=[{"imageTag": "v2"}],
                                           acceptedMediaTypes=[DOCKER_MANIFEST])
        self.assertEqual(len(refused["failures"]), 1)
        detail = self.ecr.describe_images(repositoryName="images",
                                          imageIds=[{"imageTag": "v2"}])["imageDetails"][0]
        self.assertIn("lastRecordedPullTime", detail)

        deleted = self.ecr.batch_delete_image(repositoryName="images", imageIds=[
            {"imageTag": "v1"}, {"imageDigest": untagged}, {"imageTag": "gone"}])
        self.assertEqual(deleted["imageIds"], [{"imageDigest": first, "imageTag": "v1"},
                                               {"imageDigest": untagged}])
        self.assertEqual([(f["imageId"], f["failureCode"]) for f in deleted["failures"]],
                         [({"imageTag": "gone"}, "ImageNotFound")])
        self.assertEqual(self.image_digests("images"), [second])
        self.assertAwsError(lambda: self.ecr.batch_delete_image(
            repositoryName="missing", imageIds=[{"imageTag": "v1"}]),
            "RepositoryNotFoundException")
        listed = self.server.aws("ecr", "list-images", "--repository-name", "images")
        self.assertEqual(listed["imageIds"], [{"imageDigest": second, "imageTag": "v2"}])

    def test_an_image_in_an_index_is_not_deleted(self):
        self.create("indexed")
        manifest = self.api_manifest("indexed", seed="child")
        child = self.put("indexed", manifest, "child")
        self.put("indexed", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child, "size": len(manifest)}]}), "multi")
        deleted = self.ecr.batch_delete_image(repositoryName="indexed",
                                              imageIds=[{"imageDigest": child}])
        self.assertEqual(deleted["failures"][0]["failureCode"], "ImageReferencedByManifestList")


class RegistryPushTest(EcrTestBase):
    """skopeo pushes through /v2/ after `aws ecr get-login-password`."""

    def test_login_push_and_describe(self):
        self.create("pushed/app")
        layout = self.new_oci_image({"hello.txt": "hello\n"})
        self.skopeo_push(layout, "pushed/app", "v1")
        details = self.server.aws("ecr", "describe-images", "--repository-name", "pushed/app")
        self.assertEqual(len(details["imageDetails"]), 1)
        detail = details["imageDetails"][0]
        self.assertEqual(detail["imageTags"], ["v1"])
        self.assertEqual(detail["imageManifestMediaType"], OCI_MANIFEST)
        self.assertGreater(detail["imageSizeInBytes"], 0)
        # The layers skopeo pushed are visible to the ECR API.
        manifest = json.loads(self.ecr.batch_get_image(
            repositoryName="pushed/app", imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"])
        checked = self.ecr.batch_check_layer_availability(
            repositoryName="pushed/app",
            layerDigests=[layer["digest"] for layer in manifest["layers"]])
        self.assertEqual(len(checked["layers"]), len(manifest["layers"]))

    def test_round_trip_keeps_every_digest(self):
        """OCI layout → Wharf → OCI layout with skopeo: the manifest and every blob are identical."""
        self.create("pushed/roundtrip")
        layout = self.new_oci_image({"etc/motd": "round trip\n"})
        self.skopeo_push(layout, "pushed/roundtrip", "v1")
        pulled = os.path.join(self.workdir, "pulled-roundtrip")
        result = subprocess.run(
            ["skopeo", "copy", "--src-tls-verify=false", "--src-authfile", self.authfile,
             f"docker://{self.registry}/pushed/roundtrip:v1", f"oci:{pulled}:v1"],
            capture_output=True, text=True, timeout=180)
        self.assertEqual(result.returncode, 0, result.stderr)

        def manifest_digest(layout_dir):
            with open(os.path.join(layout_dir, "index.json")) as index:
                return json.load(index)["manifests"][0]["digest"]

        def blobs(layout_dir):
            return sorted(os.listdir(os.path.join(layout_dir, "blobs", "sha256")))

        self.assertEqual(manifest_digest(pulled), manifest_digest(layout))
        # umoci keeps superseded blobs in its layout; the pulled one holds exactly the image's.
        self.assertEqual(len(blobs(pulled)), 3)  # manifest, config, one layer
        self.assertLessEqual(set(blobs(pulled)), set(blobs(layout)))
        inspected = json.loads(subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--authfile", self.authfile,
             f"docker://{self.registry}/pushed/roundtrip:v1"],
            capture_output=True, text=True, timeout=60, check=True).stdout)
        self.assertEqual(inspected["Digest"], manifest_digest(layout))

    def test_empty_umoci_image(self):
        self.create("pushed/empty")
        workdir = os.path.join(self.workdir, "empty-image")
        os.makedirs(workdir)
        self.skopeo_push(build_oci_image(workdir), "pushed/empty", "latest")
        self.assertEqual(len(self.image_digests("pushed/empty")), 1)

    def test_immutable_tag_refused_through_v2(self):
        self.create("pushed/immutable", imageTagMutability="IMMUTABLE")
        self.skopeo_push(self.new_oci_image(), "pushed/immutable", "v1")
        refused = self.skopeo_push(self.new_oci_image(), "pushed/immutable", "v1", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("immutable", refused.stderr)
        self.assertEqual(len(self.image_digests("pushed/immutable")), 1)


class LifecycleTest(EcrTestBase):

    KEEP_ONE = json.dumps({"rules": [
        {"rulePriority": 1, "description": "keep every v* image",
         "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                       "countType": "imageCountMoreThan", "countNumber": 100},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "only the newest of the rest",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
         "action": {"type": "expire"}}]})

    def test_policy_errors(self):
        self.create("lifecycle-errors")
        self.assertAwsError(lambda: self.ecr.get_lifecycle_policy(repositoryName="lifecycle-errors"),
                            "LifecyclePolicyNotFoundException")
        self.assertAwsError(
            lambda: self.ecr.delete_lifecycle_policy(repositoryName="lifecycle-errors"),
            "LifecyclePolicyNotFoundException")
        self.assertAwsError(
            lambda: self.ecr.get_lifecycle_policy_preview(repositoryName="lifecycle-errors"),
            "LifecyclePolicyPreviewNotFoundException")
        self.assertAwsError(
            lambda: self.ecr.start_lifecycle_policy_preview(repositoryName="lifecycle-errors"),
            "LifecyclePolicyNotFoundException")
        bad_policies = {
            "tagged without a list": {"rules": [{"rulePriority": 1, "selection": {
                "tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1},
                "action": {"type": "expire"}}]},
            "any not last": {"rules": [
                {"rulePriority": 1, "selection": {"tagStatus": "any",
                                                  "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"}},
                {"rulePriority": 2, "selection": {"tagStatus": "untagged",
                                                  "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"}}]},
            "duplicate priorities": {"rules": [
                {"rulePriority": 1, "selection": {"tagStatus": "untagged",
                                                  "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"}},
                {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                                                  "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"}}]},
            "five wildcards": {"rules": [{"rulePriority": 1, "selection": {
                "tagStatus": "tagged", "tagPatternList": ["*a*b*c*d*"],
                "countType": "imageCountMoreThan", "countNumber": 1},
                "action": {"type": "expire"}}]},
            "days without unit": {"rules": [{"rulePriority": 1, "selection": {
                "tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1},
                "action": {"type": "expire"}}]},
        }
        for name, policy in bad_policies.items():
            with self.subTest(name):
                self.assertAwsError(lambda: self.ecr.put_lifecycle_policy(
                    repositoryName="lifecycle-errors", lifecyclePolicyText=json.dumps(policy)),
                    "InvalidParameterException", message="Lifecycle policy validation failure")
        self.assertAwsError(lambda: self.ecr.put_lifecycle_policy(
            repositoryName="missing", lifecyclePolicyText=self.KEEP_ONE),
            "RepositoryNotFoundException")

    def test_untagged_images_expire(self):
        self.create("lifecycle/app")
        # Push twice to the same tag: the first image becomes untagged.
        self.skopeo_push(self.new_oci_image(), "lifecycle/app", "latest")
        first = self.image_digests("lifecycle/app")
        self.skopeo_push(self.new_oci_image(), "lifecycle/app", "latest")
        untagged = self.image_digests("lifecycle/app", "UNTAGGED")
        self.assertEqual(untagged, first)
        tagged = self.image_digests("lifecycle/app", "TAGGED")
        self.assertEqual(len(tagged), 1)

        # A preview says what would go, and changes nothing.
        started = self.ecr.start_lifecycle_policy_preview(repositoryName="lifecycle/app",
                                                          lifecyclePolicyText=self.KEEP_ONE)
        self.assertIn(started["status"], ("IN_PROGRESS", "COMPLETE"))
        self.ecr.get_waiter("lifecycle_policy_preview_complete").wait(
            repositoryName="lifecycle/app", WaiterConfig={"Delay": 1, "MaxAttempts": 10})
        preview = self.ecr.get_lifecycle_policy_preview(repositoryName="lifecycle/app")
        self.assertEqual(preview["status"], "COMPLETE")
        self.assertEqual([(result["imageDigest"], result["action"]["type"],
                           result["appliedRulePriority"]) for result in preview["previewResults"]],
                         [(untagged[0], "EXPIRE", 2)])
        self.assertEqual(preview["summary"]["expiringImageTotalCount"], 1)
        self.assertEqual(len(self.image_digests("lifecycle/app")), 2)

        # The policy applies on its own (every second on this server): the untagged image goes.
        put = self.ecr.put_lifecycle_policy(repositoryName="lifecycle/app",
                                            lifecyclePolicyText=self.KEEP_ONE)
        self.assertEqual(put["lifecyclePolicyText"], self.KEEP_ONE)
        self.wait_for(lambda: self.image_digests("lifecycle/app") == tagged,
                      message="the untagged image to expire")
        policy = self.ecr.get_lifecycle_policy(repositoryName="lifecycle/app")
        self.assertEqual(policy["lifecyclePolicyText"], self.KEEP_ONE)
        self.assertIsInstance(policy["lastEvaluatedAt"], datetime.datetime)
        self.assertAwsError(lambda: self.ecr.describe_images(
            repositoryName="lifecycle/app", imageIds=[{"imageDigest": untagged[0]}]),
            "ImageNotFoundException")

        # After a push the policy runs again: the image the tag left behind goes too.
        self.skopeo_push(self.new_oci_image(), "lifecycle/app", "latest")
        newest = self.image_digests("lifecycle/app", "TAGGED")
        self.wait_for(lambda: self.image_digests("lifecycle/app") == newest,
                      message="the replaced image to expire")

        deleted = self.ecr.delete_lifecycle_policy(repositoryName="lifecycle/app")
        self.assertEqual(deleted["lifecyclePolicyText"], self.KEEP_ONE)
        self.assertAwsError(lambda: self.ecr.get_lifecycle_policy(repositoryName="lifecycle/app"),
                            "LifecyclePolicyNotFoundException")


class ScanTest(EcrTestBase):
    """Scans against a database with a HIGH and a LOW entry for wharf-demo 1.0-1."""

    def test_scan_finds_the_vulnerable_package(self):
        self.create("scan/debian")
        self.skopeo_push(self.new_oci_image(DEBIAN_FILES), "scan/debian", "v1")
        self.assertAwsError(lambda: self.ecr.describe_image_scan_findings(
            repositoryName="scan/debian", imageId={"imageTag": "v1"}), "ScanNotFoundException")
        started = self.ecr.start_image_scan(repositoryName="scan/debian",
                                            imageId={"imageTag": "v1"})
        self.assertEqual(started["imageScanStatus"]["status"], "IN_PROGRESS")
        found = self.scan("scan/debian", "v1")
        self.assertEqual(found["imageScanStatus"]["status"], "COMPLETE")
        self.assertIn("2 OS packages (dpkg) on debian:12", found["imageScanStatus"]["description"])
        findings = found["imageScanFindings"]
        self.assertEqual(findings["findingSeverityCounts"], {"HIGH": 1})
        self.assertEqual(findings["vulnerabilitySourceUpdatedAt"],
                         datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc))
        self.assertEqual(len(findings["findings"]), 1)
        finding = findings["findings"][0]
        self.assertEqual(finding["name"], "CVE-2099-0001")
        self.assertEqual(finding["severity"], "HIGH")
        self.assertEqual(finding["uri"], "https://security.example/CVE-2099-0001")
        attributes = {attribute["key"]: attribute["value"] for attribute in finding["attributes"]}
        self.assertEqual(attributes["package_name"], VULNERABLE_PACKAGE)
        self.assertEqual(attributes["package_version"], "1.0-1")
        self.assertEqual(attributes["CVSS2_SCORE"], "7.5")
        detail = self.ecr.describe_images(repositoryName="scan/debian")["imageDetails"][0]
        self.assertEqual(detail["imageScanStatus"]["status"], "COMPLETE")
        self.assertEqual(detail["imageScanFindingsSummary"]["findingSeverityCounts"], {"HIGH": 1})
        cli = self.server.aws("ecr", "describe-image-scan-findings", "--repository-name",
                              "scan/debian", "--image-id", "imageTag=v1")
        self.assertEqual(cli["imageScanFindings"]["findings"][0]["name"], "CVE-2099-0001")

    def test_scan_results_and_settings_survive_a_restart(self):
        self.create("scan/durable", imageTagMutability="IMMUTABLE")
        self.skopeo_push(self.new_oci_image(DEBIAN_FILES), "scan/durable", "v1")
        before = self.scan("scan/durable", "v1")["imageScanFindings"]["findings"]
        policy = LifecycleTest.KEEP_ONE
        self.ecr.put_lifecycle_policy(repositoryName="scan/durable", lifecyclePolicyText=policy)
        self.server.restart()
        after = self.ecr.describe_image_scan_findings(repositoryName="scan/durable",
                                                      imageId={"imageTag": "v1"})
        self.assertEqual(after["imageScanStatus"]["status"], "COMPLETE")
        self.assertEqual(after["imageScanFindings"]["findings"], before)
        self.assertEqual(self.ecr.get_lifecycle_policy(
            repositoryName="scan/durable")["lifecyclePolicyText"], policy)
        repository = self.ecr.describe_repositories(
            repositoryNames=["scan/durable"])["repositories"][0]
        self.assertEqual(repository["imageTagMutability"], "IMMUTABLE")

    def test_scan_on_push(self):
        self.create("scan/on-push", imageScanningConfiguration={"scanOnPush": True})
        self.skopeo_push(self.new_oci_image(DEBIAN_FILES), "scan/on-push", "v1")
        self.ecr.get_waiter("image_scan_complete").wait(
            repositoryName="scan/on-push", imageId={"imageTag": "v1"},
            WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        found = self.ecr.describe_image_scan_findings(repositoryName="scan/on-push",
                                                      imageId={"imageTag": "v1"})
        self.assertEqual(found["imageScanFindings"]["findingSeverityCounts"], {"HIGH": 1})

    def test_scan_errors(self):
        self.create("scan/errors")
        self.assertAwsError(lambda: self.ecr.start_image_scan(
            repositoryName="scan/errors", imageId={"imageTag": "none"}), "ImageNotFoundException")
        self.assertAwsError(lambda: self.ecr.start_image_scan(
            repositoryName="missing", imageId={"imageTag": "none"}), "RepositoryNotFoundException")
        manifest = self.api_manifest("scan/errors", seed="child")
        child = self.put("scan/errors", manifest, "child")
        self.put("scan/errors", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                            "manifests": [{"mediaType": OCI_MANIFEST,
                                                           "digest": child,
                                                           "size": len(manifest)}]}), "multi")
        self.assertAwsError(lambda: self.ecr.start_image_scan(
            repositoryName="scan/errors", imageId={"imageTag": "multi"}),
            "UnsupportedImageTypeException")
        # No package database in the image: unsupported, not a guess.
        self.ecr.start_image_scan(repositoryName="scan/errors", imageId={"imageTag": "child"})
        self.wait_for(lambda: self.ecr.describe_image_scan_findings(
            repositoryName="scan/errors", imageId={"imageTag": "child"}
        )["imageScanStatus"]["status"] != "IN_PROGRESS", message="the scan")
        found = self.ecr.describe_image_scan_findings(repositoryName="scan/errors",
                                                      imageId={"imageTag": "child"})
        self.assertEqual(found["imageScanStatus"]["status"], "UNSUPPORTED_IMAGE")


class EmptyDatabaseScanTest(EcrTestBase):
    """An empty operator database: scans complete with zero findings."""

    database = {"vulnerabilities": []}

    def test_no_findings(self):
        self.create("scan/empty-db")
        self.skopeo_push(self.new_oci_image(DEBIAN_FILES), "scan/empty-db", "v1")
        found = self.scan("scan/empty-db", "v1")
        self.assertEqual(found["imageScanStatus"]["status"], "COMPLETE")
        self.assertEqual(found["imageScanFindings"]["findings"], [])
        self.assertEqual(found["imageScanFindings"].get("findingSeverityCounts", {}), {})


class NoDatabaseScanTest(EcrTestBase):
    """No --scan-database at all: scans inventory packages and find nothing."""

    database = None

    def test_no_findings(self):
        self.create("scan/no-db")
        self.skopeo_push(self.new_oci_image(DEBIAN_FILES), "scan/no-db", "v1")
        found = self.scan("scan/no-db", "v1")
        self.assertEqual(found["imageScanFindings"]["findings"], [])
        self.assertIn("no vulnerability database", found["imageScanStatus"]["description"])


if __name__ == "__main__":
    unittest.main()
