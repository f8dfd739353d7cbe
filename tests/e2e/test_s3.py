"""S3: the aws CLI's s3 commands and boto3 against Wharf's S3 API, its errors, and durability of
acknowledged writes across kill -9."""

import base64
import hashlib
import http.client
import os
import subprocess
import tempfile
import unittest
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.exceptions import ClientError

from harness import ACCESS_KEY, REGION, SECRET_KEY, WharfServer, WharfTestCase


class S3TestCase(WharfTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3 = cls.server.client("s3")

    def bucket(self, name):
        self.s3.create_bucket(Bucket=name)
        self.addCleanup(self.empty_and_delete, name)
        return name

    def empty_and_delete(self, name):
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    self.s3.delete_object(Bucket=name, Key=item["Key"])
            self.s3.delete_bucket(Bucket=name)
        except ClientError:
            pass

    def signed(self, method, path, body=b"", headers=None, content_sha256=None,
               signed_sha256=None):
        """A raw request signed with botocore's S3 signer; returns (status, headers, body).
        `signed_sha256` is signed (and sent) as the payload hash instead of the body's."""
        url = self.server.endpoint + path
        request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body,
                                                 headers=dict(headers or {}))
        signer = botocore.auth.S3SigV4Auth(
            botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
        if signed_sha256 is not None:
            signer.payload = lambda request: signed_sha256
        signer.add_auth(request)
        prepared = request.prepare()
        send_headers = dict(prepared.headers)
        if content_sha256 is not None:  # signed one value, send another: the server must notice
            send_headers["X-Amz-Content-SHA256"] = content_sha256
        parts = urllib.parse.urlsplit(self.server.endpoint)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=send_headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


class CliTest(S3TestCase):

    def cli(self, *args):
        """Runs `aws s3 ...` (text output); returns its stdout."""
        result = self.server.aws("s3", *args, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_mb_cp_ls_rm_rb(self):
        work = tempfile.mkdtemp(prefix="wharf-s3-")
        self.addCleanup(subprocess.run, ["rm", "-rf", work])
        small = os.path.join(work, "small.env")
        with open(small, "w") as out:
            out.write("A=1\nB=two\n")
        big = os.path.join(work, "big.bin")
        with open(big, "wb") as out:
            out.write(os.urandom(20 * 1024 * 1024))
        self.cli("mb", "s3://cli-bucket")
        self.cli("cp", small, "s3://cli-bucket/env/app.env")
        self.cli("cp", big, "s3://cli-bucket/blobs/big.bin")
        self.cli("cp", small, "s3://cli-bucket/top.txt")

        listing = self.cli("ls", "s3://cli-bucket/")
        self.assertIn("PRE env/", listing)
        self.assertIn("PRE blobs/", listing)
        self.assertIn("top.txt", listing)
        inside = self.cli("ls", "s3://cli-bucket/env/")
        self.assertIn("app.env", inside)
        self.assertNotIn("big.bin", inside)

        # Multipart: 20 MiB in 8 MiB parts; the ETag says so.
        head = self.s3.head_object(Bucket="cli-bucket", Key="blobs/big.bin")
        self.assertTrue(head["ETag"].endswith('-3"'), head["ETag"])
        downloaded = os.path.join(work, "down.bin")
        self.cli("cp", "s3://cli-bucket/blobs/big.bin", downloaded)
        with open(big, "rb") as want, open(downloaded, "rb") as got:
            self.assertEqual(hashlib.sha256(want.read()).digest(),
                             hashlib.sha256(got.read()).digest())
        self.cli("cp", "s3://cli-bucket/env/app.env", downloaded)
        with open(downloaded) as got:
            self.assertEqual(got.read(), "A=1\nB=two\n")

        self.cli("cp", "s3://cli-bucket/top.txt", "s3://cli-bucket/copied.txt")
        self.assertEqual(self.s3.get_object(Bucket="cli-bucket", Key="copied.txt")["Body"].read(),
                         b"A=1\nB=two\n")
        # Over 8 MiB the CLI copies in parts (UploadPartCopy with source ranges).
        self.cli("cp", "s3://cli-bucket/blobs/big.bin", "s3://cli-bucket/big-copy.bin")
        self.assertTrue(self.s3.head_object(Bucket="cli-bucket",
                                            Key="big-copy.bin")["ETag"].endswith('-3"'))
        with open(big, "rb") as want:
            self.assertEqual(
                hashlib.sha256(want.read()).digest(),
                hashlib.sha256(self.s3.get_object(Bucket="cli-bucket",
                                                  Key="big-copy.bin")["Body"].read()).digest())

        self.cli("rm", "--recursive", "s3://cli-bucket/")
        self.assertEqual(self.s3.list_objects_v2(Bucket="cli-bucket")["KeyCount"], 0)
        self.cli("rb", "s3://cli-bucket")
        self.assertNotIn("cli-bucket",
                         [b["Name"] for b in self.s3.list_buckets()["Buckets"]])


class ObjectTest(S3TestCase):

    def test_put_get_head_delete_with_metadata(self):
        bucket = self.bucket("objects")
        put = self.s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello world",
                                 ContentType="text/plain", Metadata={"team": "core"})
        self.assertEqual(put["ETag"], '"%s"' % hashlib.md5(b"hello world").hexdigest())
        got = self.s3.get_object(Bucket=bucket, Key="a/b.txt")
        self.assertEqual(got["Body"].read(), b"hello world")
        self.assertEqual(got["ContentType"], "text/plain")
        self.assertEqual(got["Metadata"], {"team": "core"})
        head = self.s3.head_object(Bucket=bucket, Key="a/b.txt")
        self.assertEqual(head["ContentLength"], 11)
        self.assertEqual(head["ETag"], put["ETag"])
        self.s3.delete_object(Bucket=bucket, Key="a/b.txt")
        self.s3.delete_object(Bucket=bucket, Key="a/b.txt")  # idempotent
        self.assertAwsError(lambda: self.s3.get_object(Bucket=bucket, Key="a/b.txt"),
                            "NoSuchKey", 404)
        self.assertAwsError(lambda: self.s3.head_object(Bucket=bucket, Key="a/b.txt"), "404", 404)

    def test_ranged_get_and_conditionals(self):
        bucket = self.bucket("ranges")
        etag = self.s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789")["ETag"]
        part = self.s3.get_object(Bucket=bucket, Key="k", Range="bytes=2-5")
        self.assertEqual(part["Body"].read(), b"2345")
        self.assertEqual(part["ContentRange"], "bytes 2-5/10")
        self.assertEqual(part["ResponseMetadata"]["HTTPStatusCode"], 206)
        self.assertEqual(self.s3.get_object(Bucket=bucket, Key="k", Range="bytes=-3")["Body"].read(),
                         b"789")
        self.assertAwsError(lambda: self.s3.get_object(Bucket=bucket, Key="k", Range="bytes=20-"),
                            "InvalidRange", 416)
        self.assertAwsError(lambda: self.s3.get_object(Bucket=bucket, Key="k", IfMatch='"nope"'),
                            "PreconditionFailed", 412)
        self.assertAwsError(lambda: self.s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag),
                            "304", 304)

    def test_listing_pages_and_delimiters(self):
        bucket = self.bucket("listing")
        keys = ["a/1", "a/2", "b/1", "c", "d", "e"]
        for key in keys:
            self.s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        seen = []
        token = None
        while True:
            args = {"Bucket": bucket, "MaxKeys": 2}
            if token:
                args["ContinuationToken"] = token
            page = self.s3.list_objects_v2(**args)
            self.assertLessEqual(page["KeyCount"], 2)
            seen += [item["Key"] for item in page.get("Contents", [])]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
        self.assertEqual(seen, keys)
        rolled = self.s3.list_objects_v2(Bucket=bucket, Delimiter="/")
        self.assertEqual([p["Prefix"] for p in rolled["CommonPrefixes"]], ["a/", "b/"])
        self.assertEqual([item["Key"] for item in rolled["Contents"]], ["c", "d", "e"])
        inside = self.s3.list_objects_v2(Bucket=bucket, Prefix="a/", StartAfter="a/1")
        self.assertEqual([item["Key"] for item in inside["Contents"]], ["a/2"])
        v1 = self.s3.list_objects(Bucket=bucket, Marker="c", MaxKeys=2)
        self.assertEqual([item["Key"] for item in v1["Contents"]], ["d", "e"])

    def test_awkward_keys(self):
        bucket = self.bucket("awkward")
        keys = ["with space.txt", "ünïcødé/ключ", "plus+sign", "per%cent", "a&b<c>"]
        for key in keys:
            self.s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        for key in keys:
            self.assertEqual(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
                             key.encode())
        listed = [item["Key"] for item in self.s3.list_objects_v2(Bucket=bucket)["Contents"]]
        self.assertEqual(sorted(listed, key=lambda k: k.encode()), listed)
        self.assertEqual(set(listed), set(keys))

    def test_copy_object(self):
        source = self.bucket("copy-source")
        target = self.bucket("copy-target")
        self.s3.put_object(Bucket=source, Key="x", Body=b"payload", Metadata={"m": "1"})
        copied = self.s3.copy_object(Bucket=target, Key="y",
                                     CopySource={"Bucket": source, "Key": "x"})
        self.assertEqual(copied["CopyObjectResult"]["ETag"],
                         '"%s"' % hashlib.md5(b"payload").hexdigest())
        got = self.s3.get_object(Bucket=target, Key="y")
        self.assertEqual(got["Body"].read(), b"payload")
        self.assertEqual(got["Metadata"], {"m": "1"})

    def test_upload_part_copy(self):
        bucket = self.bucket("part-copy")
        self.s3.put_object(Bucket=bucket, Key="source", Body=b"0123456789")
        upload = self.s3.create_multipart_upload(Bucket=bucket, Key="joined")["UploadId"]
        first = self.s3.upload_part_copy(Bucket=bucket, Key="joined", UploadId=upload, PartNumber=1,
                                         CopySource={"Bucket": bucket, "Key": "source"},
                                         CopySourceRange="bytes=2-5")
        self.assertEqual(first["CopyPartResult"]["ETag"], '"%s"' % hashlib.md5(b"2345").hexdigest())
        whole = self.s3.upload_part_copy(Bucket=bucket, Key="joined", UploadId=upload,
                                         PartNumber=2, CopySource=f"{bucket}/source")
        for bad in ("bytes=5-2", "bytes=0-10", "bytes=3", "items=0-1"):
            self.assertAwsError(lambda: self.s3.upload_part_copy(
                Bucket=bucket, Key="joined", UploadId=upload, PartNumber=3,
                CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange=bad),
                "InvalidArgument", 400)
        self.assertAwsError(lambda: self.s3.upload_part_copy(
            Bucket=bucket, Key="joined", UploadId=upload, PartNumber=3,
            CopySource={"Bucket": bucket, "Key": "missing"}), "NoSuchKey", 404)
        self.assertAwsError(lambda: self.s3.upload_part_copy(
            Bucket=bucket, Key="joined", UploadId="no-such-upload", PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "source"}), "NoSuchUpload", 404)
        # Every part but the last must be 5 MiB or more, so complete with the whole copy alone.
        self.s3.complete_multipart_upload(
            Bucket=bucket, Key="joined", UploadId=upload,
            MultipartUpload={"Parts": [
                {"PartNumber": 2, "ETag": whole["CopyPartResult"]["ETag"]}]})
        self.assertEqual(self.s3.get_object(Bucket=bucket, Key="joined")["Body"].read(),
                         b"0123456789")

    def test_delete_objects(self):
        bucket = self.bucket("bulk")
        for key in ("1", "2", "3"):
            self.s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        result = self.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": "1"}, {"Key": "2"}, {"Key": "nope"}]})
        self.assertEqual(sorted(d["Key"] for d in result["Deleted"]), ["1", "2", "nope"])
        self.assertEqual([item["Key"] for item in self.s3.list_objects_v2(Bucket=bucket)["Contents"]],
                         ["3"])

    def test_multipart_by_hand(self):
        bucket = self.bucket("multipart")
        upload = self.s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
        first = b"a" * (5 * 1024 * 1024)
        parts = [self.s3.upload_part(Bucket=bucket, Key="m", UploadId=upload, PartNumber=1,
                                     Body=first)["ETag"],
                 self.s3.upload_part(Bucket=bucket, Key="m", UploadId=upload, PartNumber=2,
                                     Body=b"tail")["ETag"]]
        listed = self.s3.list_parts(Bucket=bucket, Key="m", UploadId=upload)["Parts"]
        self.assertEqual([p["PartNumber"] for p in listed], [1, 2])
        uploads = self.s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
        self.assertEqual([u["UploadId"] for u in uploads], [upload])
        self.assertAwsError(lambda: self.s3.complete_multipart_upload(
            Bucket=bucket, Key="m", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": parts[1]},
                                       {"PartNumber": 1, "ETag": parts[0]}]}),
            "InvalidPartOrder")
        done = self.s3.complete_multipart_upload(
            Bucket=bucket, Key="m", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": parts[0]},
                                       {"PartNumber": 2, "ETag": parts[1]}]})
        digests = b"".join(bytes.fromhex(etag.strip('"')) for etag in parts)
        self.assertEqual(done["ETag"], '"%s-2"' % hashlib.md5(digests).hexdigest())
        self.assertEqual(self.s3.get_object(Bucket=bucket, Key="m")["Body"].read(),
                         first + b"tail")
        self.assertAwsError(lambda: self.s3.list_parts(Bucket=bucket, Key="m", UploadId=upload),
                            "NoSuchUpload", 404)
        aborted = self.s3.create_multipart_upload(Bucket=bucket, Key="n")["UploadId"]
        self.s3.abort_multipart_upload(Bucket=bucket, Key="n", UploadId=aborted)
        self.assertAwsError(lambda: self.s3.upload_part(Bucket=bucket, Key="n", UploadId=aborted,
                                                        PartNumber=1, Body=b"x"),
                            "NoSuchUpload", 404)


class BucketTest(S3TestCase):

    def test_bucket_lifecycle_and_errors(self):
        bucket = self.bucket("lifecycle")
        self.s3.head_bucket(Bucket=bucket)
        self.assertIsNone(self.s3.get_bucket_location(Bucket=bucket)["LocationConstraint"])
        # In us-east-1 creating a bucket one owns again succeeds, as S3's legacy behaviour has
        # it; elsewhere it is BucketAlreadyOwnedByYou.
        self.s3.create_bucket(Bucket=bucket)
        west = self.server.client("s3", region="eu-west-1")
        west.create_bucket(Bucket="owned-in-the-west",
                           CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.addCleanup(west.delete_bucket, Bucket="owned-in-the-west")
        self.assertAwsError(lambda: west.create_bucket(
            Bucket="owned-in-the-west",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}),
            "BucketAlreadyOwnedByYou", 409)
        # A location constraint is a region name: nothing else reaches a response header.
        self.assertAwsError(lambda: west.create_bucket(
            Bucket="bad-region",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1\r\nX-Injected: 1"}),
            "InvalidLocationConstraint", 400)
        self.s3.put_object(Bucket=bucket, Key="k", Body=b"x")
        self.assertAwsError(lambda: self.s3.get_object(
            Bucket=bucket, Key="k", ResponseContentType="text/plain\r\nX-Injected: 1"),
            "InvalidArgument", 400)
        self.assertEqual(self.s3.get_object(Bucket=bucket, Key="k",
                                            ResponseContentType="text/x-mine")["ContentType"],
                         "text/x-mine")
        self.assertAwsError(lambda: self.s3.delete_bucket(Bucket=bucket), "BucketNotEmpty", 409)
        self.assertAwsError(lambda: self.s3.get_object(Bucket="no-such-bucket", Key="k"),
                            "NoSuchBucket", 404)
        self.assertAwsError(lambda: self.s3.head_bucket(Bucket="no-such-bucket"), "404", 404)
        self.assertAwsError(lambda: self.s3.create_bucket(Bucket="Bad_Name"), "InvalidBucketName",
                            message="lower-case")

    def test_region_is_kept(self):
        west = self.server.client("s3", region="eu-west-1")
        west.create_bucket(Bucket="in-the-west",
                           CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.addCleanup(west.delete_bucket, Bucket="in-the-west")
        self.assertEqual(self.s3.get_bucket_location(Bucket="in-the-west")["LocationConstraint"],
                         "eu-west-1")
        listed = {b["Name"]: b for b in self.s3.list_buckets()["Buckets"]}
        self.assertIn("in-the-west", listed)


class AuthTest(S3TestCase):

    def test_bad_signature(self):
        wrong = self.server.client("s3", secret="not-the-secret")
        self.assertAwsError(wrong.list_buckets, "SignatureDoesNotMatch", 403)
        stranger = self.server.client("s3", access_key="AKIANOBODY0000000000")
        self.assertAwsError(stranger.list_buckets, "InvalidAccessKeyId", 403)

    def test_unsigned_is_denied(self):
        parts = urllib.parse.urlsplit(self.server.endpoint)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        connection.close()
        self.assertEqual(response.status, 403)
        self.assertIn(b"<Code>AccessDenied</Code>", body)

    def fetch(self, method, url, body=None):
        """Sends `url` (a presigned URL) as it is, unsigned; returns (status, body)."""
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request(method, parts.path + "?" + parts.query, body=body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def test_presigned_urls(self):
        bucket = self.bucket("presigned")
        self.s3.put_object(Bucket=bucket, Key="dir/a file.txt", Body=b"shared")
        # boto3 presigns with Signature Version 2 in us-east-1 unless told to use s3v4.
        v2_url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "dir/a file.txt"}, ExpiresIn=300)
        self.assertIn("AWSAccessKeyId=", v2_url)
        self.assertEqual(self.fetch("GET", v2_url), (200, b"shared"))
        status, body = self.fetch("GET", v2_url.replace("a%20file", "b%20file"))
        self.assertEqual(status, 403, body)
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", body)
        v4 = self.server.client("s3", signature_version="s3v4")
        url = v4.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "dir/a file.txt"}, ExpiresIn=300)
        self.assertIn("X-Amz-Signature=", url)
        self.assertEqual(self.fetch("GET", url), (200, b"shared"))
        # The aws CLI's presign makes the same kind of URL.
        cli_url = self.server.aws("s3", "presign", f"s3://{bucket}/dir/a file.txt",
                                  "--expires-in", "60", check=False).stdout.strip()
        self.assertEqual(self.fetch("GET", cli_url), (200, b"shared"))
        # An upload through a presigned PUT.
        for client in (self.s3, v4):
            put_url = client.generate_presigned_url(
                "put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300)
            status, body = self.fetch("PUT", put_url, body=b"sent without keys")
            self.assertEqual(status, 200, body)
            self.assertEqual(self.s3.get_object(Bucket=bucket, Key="uploaded")["Body"].read(),
                             b"sent without keys")
        # Tampering with what was signed, or the key, is refused.
        status, body = self.fetch("GET", url.replace("X-Amz-Expires=300", "X-Amz-Expires=600"))
        self.assertEqual(status, 403, body)
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", body)
        status, body = self.fetch("GET", url.replace("a%20file", "b%20file"))
        self.assertEqual(status, 403, body)
        status, body = self.fetch("GET", url.replace("X-Amz-Expires=300", "X-Amz-Expires=999999"))
        self.assertEqual(status, 400, body)
        self.assertIn(b"<Code>AuthorizationQueryParametersError</Code>", body)
        for version in ("s3", "s3v4"):
            wrong = self.server.client("s3", secret="not-the-secret",
                                       signature_version=version).generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": "dir/a file.txt"}, ExpiresIn=300)
            self.assertEqual(self.fetch("GET", wrong)[0], 403, version)

    def test_body_must_match_its_declared_hashes(self):
        bucket = self.bucket("hashes")
        status, _, body = self.signed("PUT", f"/{bucket}/k", body=b"real body",
                                      content_sha256=hashlib.sha256(b"other").hexdigest())
        # The header no longer matches the signature or the body: either check may answer.
        self.assertIn(status, (400, 403), body)
        status, _, body = self.signed("PUT", f"/{bucket}/k", body=b"real body",
                                      signed_sha256=hashlib.sha256(b"other").hexdigest())
        self.assertEqual(status, 400, body)
        self.assertIn(b"<Code>XAmzContentSHA256Mismatch</Code>", body)
        status, _, body = self.signed(
            "PUT", f"/{bucket}/k", body=b"real body",
            headers={"Content-MD5": base64.b64encode(hashlib.md5(b"other").digest()).decode()})
        self.assertEqual(status, 400, body)
        self.assertIn(b"<Code>BadDigest</Code>", body)
        self.assertAwsError(lambda: self.s3.head_object(Bucket=bucket, Key="k"), "404", 404)
        status, _, body = self.signed("PUT", f"/{bucket}/k", body=b"real body")
        self.assertEqual(status, 200, body)


class DurabilityTest(unittest.TestCase):

    def test_acknowledged_object_survives_kill_9(self):
        server = WharfServer()
        self.addCleanup(server.cleanup)
        server.start()
        s3 = server.client("s3")
        s3.create_bucket(Bucket="durable")
        body = os.urandom(3 * 1024 * 1024 + 7)
        etag = s3.put_object(Bucket="durable", Key="x.env", Body=body)["ETag"]
        s3.put_object(Bucket="durable", Key="x.env.old", Body=b"old")
        s3.put_object(Bucket="durable", Key="x.env.old", Body=b"new")
        server.kill9()
        server.start()
        s3 = server.client("s3")
        got = s3.get_object(Bucket="durable", Key="x.env")
        self.assertEqual(got["ETag"], etag)
        self.assertEqual(got["Body"].read(), body)
        self.assertEqual(s3.get_object(Bucket="durable", Key="x.env.old")["Body"].read(), b"new")
        files = os.listdir(os.path.join(server.data_dir, "s3", "data"))
        self.assertEqual(len(files), 2, files)


if __name__ == "__main__":
    unittest.main()
