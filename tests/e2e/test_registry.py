"""The OCI Distribution v1.1 registry under /v2/ (src/registry/distribution_api), driven with raw
HTTP: ECR credentials as Basic auth and the /v2/token Bearer flow; every error code of the
distribution spec the registry produces, by status and `errors[0].code`; the upload, mount,
manifest, Range, tag-paging, referrers and delete success paths header by header; sha512
digests; and a 256 MiB upload that survives kill -9 midway (nothing visible, nothing partial on
disk) and never makes the server's memory grow with the blob.

Per the spec (https://github.com/opencontainers/distribution-spec/blob/main/spec.md)."""

import base64
import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.parse

from harness import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, RawResponse, WharfTestCase

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# The spec's "Error Codes" table: `code` MUST be one of these. TAG_INVALID is a legacy Docker
# code the spec says clients MAY encounter ("Legacy Docker support error codes").
SPEC_CODES = {"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
              "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
              "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
              "TOOMANYREQUESTS"}
LEGACY_CODES = {"TAG_INVALID", "MANIFEST_UNVERIFIED"}

MIB = 1 << 20
BIG_BLOB_SIZE = 256 * MIB
KILL_AFTER = 100 * MIB
RSS_LIMIT = 100 * MIB

_DEFAULT = object()  # "use the class's Basic credentials"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data):
    return "sha512:" + hashlib.sha512(data).hexdigest()


def descriptor(media_type, data, **extra):
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def pseudo_random_chunks(seed, size, chunk=MIB):
    """`size` deterministic pseudo-random bytes in `chunk`-sized pieces (SHAKE-128 of the seed and
    the piece's index), so the same stream can be produced again without keeping it."""
    for index in range((size + chunk - 1) // chunk):
        length = min(chunk, size - index * chunk)
        yield hashlib.shake_128(f"{seed}:{index}".encode()).digest(length)


def stream_digest(seed, size):
    hasher = hashlib.sha256()
    for chunk in pseudo_random_chunks(seed, size):
        hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def path_of(location, **query):
    """The request target for a Location header (absolute or relative), with `query` added."""
    parts = urllib.parse.urlsplit(location)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(query.items())
    target = parts.path
    if pairs:
        target += "?" + urllib.parse.urlencode(pairs)
    return target


def parse_challenge(header):
    """`Bearer realm="…",service="…",scope="…"` → ("Bearer", {realm, service, scope})."""
    scheme, _, rest = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def errors_of(response):
    if not isinstance(response.json, dict):
        return []
    return response.json.get("errors") or []


def rss_of(pid, field="VmRSS"):
    """A memory figure of a process from /proc/<pid>/status, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


class StreamingRequest:
    """One request over a raw socket whose body is sent piece by piece (Content-Length or
    Transfer-Encoding: chunked), so a huge body never sits in memory and can stop midway."""

    def __init__(self, port, method, target, headers, chunked=False):
        self.chunked = chunked
        self.sent = 0
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        head = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())

    def send(self, data):
        if self.chunked:
            self.sock.sendall(b"%x\r\n" % len(data))
            self.sock.sendall(data)
            self.sock.sendall(b"\r\n")
        else:
            self.sock.sendall(data)
        self.sent += len(data)

    def finish(self):
        """Ends the body and reads the response."""
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")
        response = http.client.HTTPResponse(self.sock)
        try:
            response.begin()
            return RawResponse(response.status, response.getheaders(), response.read())
        finally:
            response.close()
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RegistryTestCase(WharfTestCase):
    """A server, its ECR client and a Basic Authorization header from GetAuthorizationToken."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ecr = cls.server.client("ecr")
        cls.token = cls.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        cls.basic = "Basic " + cls.token

    # ---- raw HTTP ----

    def call(self, method, target, body=None, headers=None, auth=_DEFAULT):
        """One request on a fresh connection; `auth` is the Authorization value (None: none)."""
        all_headers = dict(headers or {})
        if auth is _DEFAULT:
            auth = self.basic
        if auth is not None:
            all_headers["Authorization"] = auth
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            connection.request(method, target, body=body, headers=all_headers)
            response = connection.getresponse()
            return RawResponse(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def assertRegistryError(self, response, status, code):
        """`status`, and (except for HEAD, which has no body) a JSON error body whose first
        code is `code`, one the spec allows."""
        self.assertEqual(response.status, status, response)
        if code is None:
            return
        self.assertIn(code, SPEC_CODES | LEGACY_CODES)
        self.assertTrue(response.headers.get("content-type", "").startswith("application/json"),
                        response)
        errors = errors_of(response)
        self.assertTrue(errors, response)
        self.assertEqual(errors[0].get("code"), code, response)
        for error in errors:
            self.assertIn(error.get("code"), SPEC_CODES | LEGACY_CODES, response)

    # ---- content ----

    def create(self, name, **settings):
        self.ecr.create_repository(repositoryName=name, **settings)

    def push_blob(self, repository, data, digest=None):
        """A single-POST monolithic upload; returns the digest."""
        digest = digest or sha256(data)
        response = self.call("POST", path_of(f"/v2/{repository}/blobs/uploads/", digest=digest),
                             body=data, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(response.status, 201, response)
        return digest

    def start_upload(self, repository):
        response = self.call("POST", f"/v2/{repository}/blobs/uploads/")
        self.assertEqual(response.status, 202, response)
        self.assertTrue(response.headers.get("location"), response)
        return response.headers["location"]

    def put_manifest(self, repository, reference, body, media_type=OCI_MANIFEST, expect=201):
        response = self.call("PUT", f"/v2/{repository}/manifests/{reference}", body=body,
                             headers={"Content-Type": media_type})
        if expect is not None:
            self.assertEqual(response.status, expect, response)
        return response

    def push_image(self, repository, seed, tag=None, **extra):
        """Pushes a config, a layer and an OCI image manifest (tagged `tag`, else by digest);
        returns (manifest digest, manifest bytes, layer bytes)."""
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Env": [f"SEED={seed}"]},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = hashlib.sha512(seed.encode()).digest() * 4
        self.push_blob(repository, config)
        self.push_blob(repository, layer)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, config),
                               "layers": [descriptor(OCI_LAYER, layer)], **extra}).encode()
        self.put_manifest(repository, tag or sha256(manifest), manifest)
        return sha256(manifest), manifest, layer


class AuthTest(RegistryTestCase):
    """Basic credentials from ecr.get_authorization_token, the Bearer challenge and the /v2/token
    flow, refused credentials (401) and credentials for another registry (403)."""

    def test_unauthenticated_requests_get_a_bearer_challenge(self):
        self.create("auth/private")
        realm = f"http://127.0.0.1:{self.server.port}/v2/token"
        base = self.call("GET", "/v2/", auth=None)
        self.assertRegistryError(base, 401, "UNAUTHORIZED")
        scheme, params = parse_challenge(base.headers.get("www-authenticate", ""))
        self.assertEqual(scheme, "Bearer", base)
        self.assertEqual(params.get("realm"), realm)
        self.assertEqual(params.get("service"), "wharf")

        for method, target, scope, status_only in [
                ("GET", "/v2/auth/private/manifests/latest", "repository:auth/private:pull", False),
                ("HEAD", f"/v2/auth/private/blobs/{sha256(b'x')}", "repository:auth/private:pull",
                 True),
                ("GET", "/v2/auth/private/tags/list", "repository:auth/private:pull", False),
                ("POST", "/v2/auth/private/blobs/uploads/", "repository:auth/private:pull,push",
                 False),
                ("DELETE", "/v2/auth/private/manifests/latest", None, False)]:
            with self.subTest(method=method, target=target):
                response = self.call(method, target, auth=None)
                self.assertRegistryError(response, 401, None if status_only else "UNAUTHORIZED")
                scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
                self.assertEqual(scheme, "Bearer", response)
                self.assertEqual(params.get("realm"), realm, response)
                if scope:
                    self.assertEqual(params.get("scope"), scope, response)
                else:  # which actions a delete needs is the registry's business
                    self.assertTrue(params.get("scope", "").startswith(
                        "repository:auth/private:"), response)

        # An unauthenticated manifest push stores nothing.
        config = b"{}"
        self.push_blob("auth/private", config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, config), "layers": []}).encode()
        refused = self.call("PUT", "/v2/auth/private/manifests/v1", body=manifest,
                            headers={"Content-Type": OCI_MANIFEST}, auth=None)
        self.assertRegistryError(refused, 401, "UNAUTHORIZED")
        self.assertRegistryError(self.call("GET", "/v2/auth/private/manifests/v1"), 404,
                                 "MANIFEST_UNKNOWN")

    def test_authorization_token_as_basic_credentials(self):
        self.create("auth/basic")
        user, _, password = base64.b64decode(self.token).decode().partition(":")
        self.assertEqual(user, "AWS")
        basic = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
        base = self.call("GET", "/v2/", auth=basic)
        self.assertEqual(base.status, 200, base)
        self.assertEqual(base.headers.get("docker-distribution-api-version"), "registry/2.0")
        digest, manifest, _ = self.push_image("auth/basic", "basic", tag="v1")
        got = self.call("GET", "/v2/auth/basic/manifests/v1", auth=basic)
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.raw_body, manifest)
        self.assertEqual(got.headers.get("docker-content-digest"), digest)

    def test_token_flow(self):
        self.create("auth/bearer")
        challenge = self.call("GET", "/v2/auth/bearer/manifests/latest", auth=None)
        self.assertEqual(challenge.status, 401, challenge)
        _, params = parse_challenge(challenge.headers["www-authenticate"])
        realm = urllib.parse.urlsplit(params["realm"])
        self.assertEqual((realm.hostname, realm.port), ("127.0.0.1", self.server.port))
        token_target = realm.path + "?" + urllib.parse.urlencode(
            {"service": params["service"], "scope": params["scope"]})

        issued = self.call("GET", token_target, auth=self.basic)
        self.assertEqual(issued.status, 200, issued)
        token = issued.json["token"]
        self.assertTrue(token)
        self.assertEqual(issued.json["access_token"], token)
        self.assertGreater(issued.json["expires_in"], 0)
        self.assertRegex(issued.json["issued_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

        bearer = "Bearer " + token
        self.assertEqual(self.call("GET", "/v2/", auth=bearer).status, 200)
        data = b"pushed with a bearer token"
        created = self.call("POST", path_of("/v2/auth/bearer/blobs/uploads/", digest=sha256(data)),
                            body=data, auth=bearer)
        self.assertEqual(created.status, 201, created)
        got = self.call("GET", f"/v2/auth/bearer/blobs/{sha256(data)}", auth=bearer)
        self.assertEqual((got.status, got.raw_body), (200, data))
        self.assertEqual(self.call("GET", "/v2/auth/bearer/tags/list", auth=bearer).status, 200)

        # A token without credentials is anonymous: no use on a private repository.
        anonymous = self.call("GET", token_target, auth=None)
        self.assertEqual(anonymous.status, 200, anonymous)
        anonymous_bearer = "Bearer " + anonymous.json["token"]
        self.assertRegistryError(self.call("GET", "/v2/", auth=anonymous_bearer), 401,
                                 "UNAUTHORIZED")
        refused = self.call("GET", f"/v2/auth/bearer/blobs/{sha256(data)}", auth=anonymous_bearer)
        self.assertRegistryError(refused, 401, "UNAUTHORIZED")
        self.assertTrue(refused.headers.get("www-authenticate", "").startswith("Bearer "))

    def test_anonymous_pull_allowed_by_repository_policy(self):
        self.create("auth/public")
        digest, manifest, layer = self.push_image("auth/public", "public", tag="v1")
        self.ecr.set_repository_policy(repositoryName="auth/public", policyText=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage",
                                                                 "ecr:GetDownloadUrlForLayer"]}]}))
        got = self.call("GET", "/v2/auth/public/manifests/v1", auth=None)
        self.assertEqual((got.status, got.raw_body), (200, manifest))
        self.assertEqual(self.call("GET", f"/v2/auth/public/blobs/{sha256(layer)}",
                                   auth=None).raw_body, layer)
        # Pulls only: pushing and deleting still need credentials.
        push = self.call("POST", "/v2/auth/public/blobs/uploads/", auth=None)
        self.assertRegistryError(push, 401, "UNAUTHORIZED")
        self.assertEqual(parse_challenge(push.headers["www-authenticate"])[1].get("scope"),
                         "repository:auth/public:pull,push")
        self.assertRegistryError(self.call("DELETE", f"/v2/auth/public/manifests/{digest}",
                                           auth=None), 401, "UNAUTHORIZED")
        self.assertEqual(self.call("GET", f"/v2/auth/public/manifests/{digest}").status, 200)

    def test_wrong_credentials_are_refused(self):
        self.create("auth/wrong")
        _, _, password = base64.b64decode(self.token).decode().partition(":")
        payload, _, mac = password.rpartition(".")
        tampered_mac = payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["a"] = "210987654321"  # another account, with the original signature
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

        def basic(user, secret):
            return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()

        wrong = {
            "tampered signature": basic("AWS", tampered_mac),
            "forged claims": basic("AWS", forged + "." + mac),
            "user other than AWS": basic("admin", password),
            "IAM keys as Basic credentials": basic(ACCESS_KEY, SECRET_KEY),
            "not base64": "Basic !!!not-base64!!!",
            "empty password": basic("AWS", ""),
            "ECR password as a Bearer token": "Bearer " + password,
            "bogus Bearer token": "Bearer abc.def",
        }
        for name, authorization in wrong.items():
            for method, target in [("GET", "/v2/"), ("GET", "/v2/auth/wrong/tags/list"),
                                   ("POST", "/v2/auth/wrong/blobs/uploads/"),
                                   ("GET", "/v2/token?service=wharf")]:
                with self.subTest(credentials=name, method=method, target=target):
                    response = self.call(method, target, auth=authorization)
                    self.assertRegistryError(response, 401, "UNAUTHORIZED")
                    self.assertTrue(response.headers.get("www-authenticate", "")
                                    .startswith("Bearer "), response)
        # The right password still works after all that.
        self.assertEqual(self.call("GET", "/v2/auth/wrong/tags/list").status, 200)

    def test_credentials_for_another_registry_are_denied(self):
        self.create("auth/owned")
        self.push_image("auth/owned", "owned", tag="v1")
        other_account = f"210987654321.dkr.ecr.{REGION}.localhost:{self.server.port}"
        for method, target, body in [("GET", "/v2/auth/owned/manifests/v1", None),
                                     ("GET", "/v2/auth/owned/tags/list", None),
                                     ("POST", "/v2/auth/owned/blobs/uploads/", None),
                                     ("POST", path_of("/v2/auth/owned/blobs/uploads/",
                                                      digest=sha256(b"denied")), b"denied")]:
            with self.subTest(method=method, target=target):
                response = self.call(method, target, body=body, headers={"Host": other_account})
                self.assertRegistryError(response, 403, "DENIED")
        # Credentials issued in another region do not cover this region's registry either.
        west = self.server.client("ecr", region="us-west-2")
        west_token = west.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        east_host = f"{ACCOUNT}.dkr.ecr.{REGION}.localhost:{self.server.port}"
        denied = self.call("GET", "/v2/auth/owned/manifests/v1", auth="Basic " + west_token,
                           headers={"Host": east_host})
        self.assertRegistryError(denied, 403, "DENIED")
        # …while this registry's own credentials under the same host name work.
        owned = self.call("GET", "/v2/auth/owned/manifests/v1", headers={"Host": east_host})
        self.assertEqual(owned.status, 200, owned)


class ErrorCodeTest(RegistryTestCase):
    """Every error code of the spec's table the registry produces, from crafted requests."""

    def test_blob_unknown(self):
        self.create("errors/blobs")
        self.create("errors/other")
        absent = sha256(b"never uploaded")
        self.assertRegistryError(self.call("GET", f"/v2/errors/blobs/blobs/{absent}"), 404,
                                 "BLOB_UNKNOWN")
        self.assertRegistryError(self.call("HEAD", f"/v2/errors/blobs/blobs/{absent}"), 404, None)
        self.assertRegistryError(self.call("DELETE", f"/v2/errors/blobs/blobs/{absent}"), 404,
                                 "BLOB_UNKNOWN")
        # Blobs belong to a repository: one pushed elsewhere is unknown here.
        elsewhere = self.push_blob("errors/other", b"in another repository")
        self.assertRegistryError(self.call("GET", f"/v2/errors/blobs/blobs/{elsewhere}"), 404,
                                 "BLOB_UNKNOWN")
        self.assertRegistryError(self.call("HEAD", f"/v2/errors/blobs/blobs/{elsewhere}"), 404,
                                 None)

    def test_blob_upload_invalid(self):
        self.create("errors/chunks")
        location = self.start_upload("errors/chunks")
        first = self.call("PATCH", path_of(location), body=b"0123456789",
                          headers={"Content-Range": "0-9", "Content-Type":
                                   "application/octet-stream"})
        self.assertEqual(first.status, 202, first)
        self.assertEqual(first.headers.get("range"), "0-9")
        location = first.headers["location"]
        # Out of order (a gap, an overlap, a restart from 0): 416 per the spec.
        for content_range in ("20-29", "5-14", "0-9"):
            with self.subTest(content_range=content_range):
                refused = self.call("PATCH", path_of(location), body=b"abcdefghij",
                                    headers={"Content-Range": content_range})
                self.assertRegistryError(refused, 416, "BLOB_UPLOAD_INVALID")
        # A Content-Range that is malformed or disagrees with the body's length.
        for content_range in ("abc", "10-", "19-10", "10-29"):
            with self.subTest(content_range=content_range):
                refused = self.call("PATCH", path_of(location), body=b"abcdefghij",
                                    headers={"Content-Range": content_range})
                self.assertIn(refused.status, (400, 416), refused)
                self.assertRegistryError(refused, refused.status, "BLOB_UPLOAD_INVALID")
        # The refused chunks changed nothing: the upload goes on from byte 10.
        status = self.call("GET", path_of(location))
        self.assertEqual((status.status, status.headers.get("range")), (204, "0-9"), status)
        second = self.call("PATCH", path_of(location), body=b"abcdefghij",
                           headers={"Content-Range": "10-19"})
        self.assertEqual((second.status, second.headers.get("range")), (202, "0-19"), second)
        data = b"0123456789abcdefghij"
        done = self.call("PUT", path_of(second.headers["location"], digest=sha256(data)))
        self.assertEqual(done.status, 201, done)
        self.assertEqual(self.call("GET", f"/v2/errors/chunks/blobs/{sha256(data)}").raw_body,
                         data)

    def test_blob_upload_unknown(self):
        self.create("errors/uploads")
        self.create("errors/elsewhere")
        digest = sha256(b"data")
        for method, query, body in [("GET", {}, None), ("PATCH", {}, b"data"),
                                    ("PUT", {"digest": digest}, b"data"), ("DELETE", {}, None)]:
            with self.subTest(method=method):
                response = self.call(method, path_of(
                    "/v2/errors/uploads/blobs/uploads/00000000-0000-0000-0000-000000000000",
                    **query), body=body)
                self.assertRegistryError(response, 404, "BLOB_UPLOAD_UNKNOWN")
        # An upload of another repository is unknown here.
        foreign = urllib.parse.urlsplit(self.start_upload("errors/elsewhere")).path
        upload_id = foreign.rsplit("/", 1)[1]
        here = f"/v2/errors/uploads/blobs/uploads/{upload_id}"
        self.assertRegistryError(self.call("GET", here), 404, "BLOB_UPLOAD_UNKNOWN")
        self.assertRegistryError(self.call("PATCH", here, body=b"data"), 404,
                                 "BLOB_UPLOAD_UNKNOWN")
        self.assertRegistryError(self.call("PUT", path_of(here, digest=digest), body=b"data"), 404,
                                 "BLOB_UPLOAD_UNKNOWN")
        self.assertEqual(self.call("GET", foreign).status, 204)
        # A completed upload is over.
        location = self.start_upload("errors/uploads")
        self.assertEqual(self.call("PUT", path_of(location, digest=digest), body=b"data").status,
                         201)
        self.assertRegistryError(self.call("PATCH", path_of(location), body=b"more"), 404,
                                 "BLOB_UPLOAD_UNKNOWN")
        self.assertRegistryError(self.call("GET", path_of(location)), 404, "BLOB_UPLOAD_UNKNOWN")

    def test_digest_invalid(self):
        self.create("errors/digests")
        data, other = b"the bytes", b"other bytes"
        # Single POST whose ?digest= is not the body's.
        refused = self.call("POST", path_of("/v2/errors/digests/blobs/uploads/",
                                            digest=sha256(other)), body=data)
        self.assertRegistryError(refused, 400, "DIGEST_INVALID")
        # Closing PUT whose ?digest= is not the upload's.
        location = self.start_upload("errors/digests")
        patched = self.call("PATCH", path_of(location), body=data,
                            headers={"Content-Range": f"0-{len(data) - 1}"})
        self.assertEqual(patched.status, 202, patched)
        refused = self.call("PUT", path_of(patched.headers["location"], digest=sha256(other)))
        self.assertRegistryError(refused, 400, "DIGEST_INVALID")
        for digest in (sha256(data), sha256(other)):
            self.assertRegistryError(self.call("HEAD", f"/v2/errors/digests/blobs/{digest}"), 404,
                                     None)
        # Malformed and unsupported digests ("SHOULD respond 400").
        for digest in ("sha256:abc", "sha256:" + "g" * 64, "md5:" + "0" * 32, "nodigest"):
            with self.subTest(digest=digest):
                self.assertRegistryError(
                    self.call("POST", path_of("/v2/errors/digests/blobs/uploads/", digest=digest),
                              body=data), 400, "DIGEST_INVALID")
                location = self.start_upload("errors/digests")
                self.assertRegistryError(
                    self.call("PUT", path_of(location, digest=digest), body=data), 400,
                    "DIGEST_INVALID")
        # A closing PUT without any digest.
        location = self.start_upload("errors/digests")
        self.assertRegistryError(self.call("PUT", path_of(location), body=data), 400,
                                 "DIGEST_INVALID")
        # A manifest pushed by a digest that is not its own.
        config = b"{}"
        self.push_blob("errors/digests", config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, config), "layers": []}).encode()
        refused = self.put_manifest("errors/digests", sha256(manifest + b" "), manifest,
                                    expect=None)
        self.assertRegistryError(refused, 400, "DIGEST_INVALID")

    def test_manifest_blob_unknown(self):
        self.create("errors/references")
        config, layer = b'{"os":"linux"}', b"layer bytes"
        self.push_blob("errors/references", config)
        self.push_blob("errors/references", layer)
        missing = b"never uploaded"
        cases = {
            "missing layer": {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": descriptor(OCI_CONFIG, config),
                              "layers": [descriptor(OCI_LAYER, layer),
                                         descriptor(OCI_LAYER, missing)]},
            "missing config": {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, missing),
                               "layers": [descriptor(OCI_LAYER, layer)]},
        }
        for name, manifest in cases.items():
            with self.subTest(name):
                body = json.dumps(manifest).encode()
                self.assertRegistryError(self.put_manifest("errors/references", "v1", body,
                                                           expect=None),
                                         400, "MANIFEST_BLOB_UNKNOWN")
        self.assertRegistryError(self.call("GET", "/v2/errors/references/manifests/v1"), 404,
                                 "MANIFEST_UNKNOWN")

    def test_index_of_an_unknown_manifest_is_manifest_blob_unknown(self):
        # "A registry MAY reject a manifest uploaded to the manifest endpoint with descriptors in
        # other fields that reference a manifest or blob that does not exist in the registry.
        # When a manifest is rejected for this reason, it MUST result in one or more
        # MANIFEST_BLOB_UNKNOWN errors."
        self.create("errors/index")
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            descriptor(OCI_MANIFEST, b"no such manifest")]}).encode()
        refused = self.put_manifest("errors/index", "multi", index, media_type=OCI_INDEX,
                                    expect=None)
        self.assertRegistryError(refused, 400, "MANIFEST_BLOB_UNKNOWN")

    def test_manifest_invalid(self):
        self.create("errors/manifests")
        config = b"{}"
        self.push_blob("errors/manifests", config)
        cases = {
            "not JSON": (b'{"schemaVersion": 2, "mediaType": ', OCI_MANIFEST),
            "a JSON array": (b"[1, 2, 3]", OCI_MANIFEST),
            "no config": (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                      "layers": []}).encode(), OCI_MANIFEST),
            "schemaVersion 3": (json.dumps({"schemaVersion": 3, "mediaType": OCI_MANIFEST,
                                            "config": descriptor(OCI_CONFIG, config),
                                            "layers": []}).encode(), OCI_MANIFEST),
            "descriptor without digest": (json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "size": 2}, "layers": []}).encode(),
                OCI_MANIFEST),
            "index without manifests": (json.dumps({"schemaVersion": 2,
                                                    "mediaType": OCI_INDEX}).encode(), OCI_INDEX),
        }
        for name, (body, media_type) in cases.items():
            with self.subTest(name):
                response = self.put_manifest("errors/manifests", "bad", body,
                                             media_type=media_type, expect=None)
                self.assertRegistryError(response, 400, "MANIFEST_INVALID")
        self.assertRegistryError(self.call("GET", "/v2/errors/manifests/manifests/bad"), 404,
                                 "MANIFEST_UNKNOWN")
        # The registry's manifest limit is 4 MiB, the least the spec says to expect: a manifest
        # of exactly 4 MiB is taken, one byte more is 413 Payload Too Large.
        def padded(size):
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": descriptor(OCI_CONFIG, config), "layers": [],
                        "annotations": {"pad": ""}}
            manifest["annotations"]["pad"] = "x" * (size - len(json.dumps(manifest)))
            body = json.dumps(manifest).encode()
            self.assertEqual(len(body), size)
            return body

        self.put_manifest("errors/manifests", "four-mib", padded(4 * MIB))
        response = self.put_manifest("errors/manifests", "huge", padded(4 * MIB + 1), expect=None)
        self.assertEqual(response.status, 413, response)
        self.assertIn(errors_of(response)[0]["code"], SPEC_CODES, response)
        self.assertRegistryError(self.call("GET", "/v2/errors/manifests/manifests/huge"), 404,
                                 "MANIFEST_UNKNOWN")

    def test_manifest_unknown(self):
        self.create("errors/unknown")
        digest, _, _ = self.push_image("errors/unknown", "known", tag="known")
        absent = sha256(b"no such manifest")
        for method in ("GET", "HEAD"):
            for reference in ("nope", absent):
                with self.subTest(method=method, reference=reference):
                    self.assertRegistryError(
                        self.call(method, f"/v2/errors/unknown/manifests/{reference}"), 404,
                        "MANIFEST_UNKNOWN" if method == "GET" else None)
        for reference in ("nope", absent):
            self.assertRegistryError(
                self.call("DELETE", f"/v2/errors/unknown/manifests/{reference}"), 404,
                "MANIFEST_UNKNOWN")
        self.assertEqual(self.call("HEAD", f"/v2/errors/unknown/manifests/{digest}").status, 200)

    def test_name_invalid(self):
        self.create("errors/names")
        self.create("errors/names/b")
        self.push_image("errors/names/b", "b", tag="v1")
        names = ["Upper", "errors/names/../names/b", "errors/names/./b", "errors//names/b",
                 "errors/names/b/", "-leading", "trailing-", "a..b",
                 "errors/names/%2e%2e/names/b", "errors/names/%2E%2E/names/b", "%2e%2e",
                 "errors%2fnames%2fb", "errors/names%2Fb", "errors/names/b%00"]
        for name in names:
            for method, suffix in [("GET", "manifests/v1"), ("HEAD", "manifests/v1"),
                                   ("GET", "tags/list"), ("POST", "blobs/uploads/"),
                                   ("GET", f"blobs/{sha256(b'x')}")]:
                with self.subTest(name=name, method=method, suffix=suffix):
                    response = self.call(method, f"/v2/{name}/{suffix}")
                    # The spec names the code, not the status: 400 (or 404).
                    self.assertIn(response.status, (400, 404), response)
                    self.assertRegistryError(response, response.status,
                                             None if method == "HEAD" else "NAME_INVALID")
        # None of those reached errors/names/b's manifest.
        self.assertEqual(self.call("GET", "/v2/errors/names/b/manifests/v1").status, 200)

    def test_name_unknown(self):
        digest = sha256(b"x")
        for method, target in [("GET", "/v2/errors/nowhere/manifests/latest"),
                               ("GET", "/v2/errors/nowhere/tags/list"),
                               ("GET", f"/v2/errors/nowhere/blobs/{digest}"),
                               ("POST", "/v2/errors/nowhere/blobs/uploads/"),
                               ("POST", path_of("/v2/errors/nowhere/blobs/uploads/",
                                                digest=digest)),
                               ("GET", f"/v2/errors/nowhere/referrers/{digest}"),
                               ("DELETE", f"/v2/errors/nowhere/manifests/{digest}")]:
            with self.subTest(method=method, target=target):
                body = b"x" if "digest=" in target else None
                self.assertRegistryError(self.call(method, target, body=body), 404,
                                         "NAME_UNKNOWN")

    def test_unsupported_methods(self):
        self.create("errors/methods")
        digest = self.push_blob("errors/methods", b"blob")
        for method, target in [("DELETE", "/v2/"), ("POST", "/v2/errors/methods/manifests/v1"),
                               ("PATCH", f"/v2/errors/methods/blobs/{digest}"),
                               ("PUT", f"/v2/errors/methods/blobs/{digest}"),
                               ("PUT", "/v2/errors/methods/tags/list"),
                               ("DELETE", f"/v2/errors/methods/referrers/{digest}")]:
            with self.subTest(method=method, target=target):
                self.assertRegistryError(self.call(method, target, body=b""), 405, "UNSUPPORTED")
        self.assertEqual(self.call("GET", f"/v2/errors/methods/blobs/{digest}").raw_body, b"blob")

    def test_schema1_manifest_is_refused(self):
        # The spec defines no code for a manifest type the registry does not take; the reference
        # registry (distribution) answers 400 MANIFEST_INVALID, UNSUPPORTED would do as well.
        self.create("errors/schema1")
        schema1 = json.dumps({
            "schemaVersion": 1, "name": "errors/schema1", "tag": "v1", "architecture": "amd64",
            "fsLayers": [{"blobSum": sha256(b"")}],
            "history": [{"v1Compatibility": "{\"id\":\"x\"}"}],
            "signatures": [{"header": {"alg": "ES256"}, "signature": "c2ln",
                            "protected": "cHJvdGVjdGVk"}]}).encode()
        for media_type in (SCHEMA1_SIGNED, "application/vnd.docker.distribution.manifest.v1+json",
                           "application/json"):
            with self.subTest(media_type=media_type):
                response = self.put_manifest("errors/schema1", "v1", schema1,
                                             media_type=media_type, expect=None)
                self.assertIn(response.status, (400, 415), response)
                self.assertIn(errors_of(response)[0]["code"], ("MANIFEST_INVALID", "UNSUPPORTED"),
                              response)
        self.assertRegistryError(self.call("GET", "/v2/errors/schema1/manifests/v1"), 404,
                                 "MANIFEST_UNKNOWN")

    def test_immutable_tag_cannot_move(self):
        self.create("errors/immutable", imageTagMutability="IMMUTABLE")
        first, first_body, _ = self.push_image("errors/immutable", "one", tag="v1")
        _, second_body, _ = self.push_image("errors/immutable", "two")  # by digest: fine
        refused = self.put_manifest("errors/immutable", "v1", second_body, expect=None)
        self.assertRegistryError(refused, 400, "TAG_INVALID")
        got = self.call("GET", "/v2/errors/immutable/manifests/v1")
        self.assertEqual((got.status, got.raw_body), (200, first_body))
        # The same manifest again under its tag is no move.
        again = self.put_manifest("errors/immutable", "v1", first_body)
        self.assertEqual(again.headers.get("docker-content-digest"), first)
        self.put_manifest("errors/immutable", "v2", second_body)

    def test_blob_range_not_satisfiable(self):
        self.create("errors/ranges")
        data = os.urandom(100)
        digest = self.push_blob("errors/ranges", data)
        for value in ("bytes=100-", "bytes=100-200", "bytes=5000-6000", "bytes=-0"):
            with self.subTest(range=value):
                response = self.call("GET", f"/v2/errors/ranges/blobs/{digest}",
                                     headers={"Range": value})
                self.assertEqual(response.status, 416, response)
                self.assertEqual(response.headers.get("content-range"), "bytes */100", response)
                if errors_of(response):
                    self.assertIn(errors_of(response)[0]["code"], SPEC_CODES, response)


class SuccessPathTest(RegistryTestCase):
    """The spec's success paths by raw HTTP, with the statuses and headers it requires."""

    def assertBlob(self, repository, digest, data):
        head = self.call("HEAD", f"/v2/{repository}/blobs/{digest}")
        self.assertEqual(head.status, 200, head)
        self.assertEqual(head.headers.get("content-length"), str(len(data)), head)
        self.assertEqual(head.headers.get("docker-content-digest"), digest, head)
        self.assertEqual(head.raw_body, b"")
        got = self.call("GET", f"/v2/{repository}/blobs/{digest}")
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.raw_body, data)
        self.assertEqual(got.headers.get("docker-content-digest"), digest, got)
        self.assertEqual(got.headers.get("content-length"), str(len(data)), got)

    def test_single_post_monolithic_upload(self):
        self.create("ok/single")
        data = os.urandom(5000)
        response = self.call("POST", path_of("/v2/ok/single/blobs/uploads/", digest=sha256(data)),
                             body=data, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(response.status, 201, response)
        self.assertEqual(urllib.parse.urlsplit(response.headers["location"]).path,
                         f"/v2/ok/single/blobs/{sha256(data)}")
        self.assertEqual(response.headers.get("docker-content-digest"), sha256(data))
        self.assertEqual(self.call("GET", path_of(response.headers["location"])).raw_body, data)
        self.assertBlob("ok/single", sha256(data), data)

    def test_post_then_put(self):
        self.create("ok/post-put")
        data = os.urandom(3000)
        location = self.start_upload("ok/post-put")
        done = self.call("PUT", path_of(location, digest=sha256(data)), body=data,
                         headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(done.status, 201, done)
        self.assertEqual(urllib.parse.urlsplit(done.headers["location"]).path,
                         f"/v2/ok/post-put/blobs/{sha256(data)}")
        self.assertBlob("ok/post-put", sha256(data), data)
        # Concurrent uploads get their own locations.
        self.assertNotEqual(self.start_upload("ok/post-put"), self.start_upload("ok/post-put"))

    def test_chunked_upload(self):
        self.create("ok/chunked")
        chunks = [os.urandom(1000), os.urandom(2000), os.urandom(1500)]
        data = b"".join(chunks)
        location = self.start_upload("ok/chunked")
        offset = 0
        for chunk in chunks:
            last = offset + len(chunk) - 1
            response = self.call("PATCH", path_of(location), body=chunk, headers={
                "Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{last}"})
            self.assertEqual(response.status, 202, response)
            self.assertEqual(response.headers.get("range"), f"0-{last}", response)
            location = response.headers["location"]
            offset += len(chunk)
            status = self.call("GET", path_of(location))
            self.assertEqual(status.status, 204, status)
            self.assertEqual(status.headers.get("range"), f"0-{last}", status)
            self.assertTrue(status.headers.get("location"), status)
            self.assertEqual(status.raw_body, b"")
        done = self.call("PUT", path_of(location, digest=sha256(data)))
        self.assertEqual(done.status, 201, done)
        self.assertEqual(urllib.parse.urlsplit(done.headers["location"]).path,
                         f"/v2/ok/chunked/blobs/{sha256(data)}")
        self.assertBlob("ok/chunked", sha256(data), data)

        # The final chunk may come with the closing PUT.
        head, tail = os.urandom(700), os.urandom(300)
        location = self.start_upload("ok/chunked")
        patched = self.call("PATCH", path_of(location), body=head,
                            headers={"Content-Range": f"0-{len(head) - 1}"})
        self.assertEqual(patched.status, 202, patched)
        done = self.call("PUT", path_of(patched.headers["location"], digest=sha256(head + tail)),
                         body=tail, headers={"Content-Type": "application/octet-stream",
                                             "Content-Range": f"{len(head)}-{len(head) + 299}"})
        self.assertEqual(done.status, 201, done)
        self.assertBlob("ok/chunked", sha256(head + tail), head + tail)

    def test_cancel_upload(self):
        self.create("ok/cancel")
        location = self.start_upload("ok/cancel")
        patched = self.call("PATCH", path_of(location), body=b"partial",
                            headers={"Content-Range": "0-6"})
        self.assertEqual(patched.status, 202, patched)
        cancelled = self.call("DELETE", path_of(patched.headers["location"]))
        self.assertEqual(cancelled.status, 204, cancelled)
        for method, query in [("GET", {}), ("PUT", {"digest": sha256(b"partial")}),
                              ("DELETE", {})]:
            with self.subTest(method=method):
                self.assertRegistryError(self.call(method, path_of(location, **query)), 404,
                                         "BLOB_UPLOAD_UNKNOWN")
        self.assertRegistryError(self.call("GET", f"/v2/ok/cancel/blobs/{sha256(b'partial')}"),
                                 404, "BLOB_UNKNOWN")

    def test_cross_repository_mount(self):
        self.create("ok/mount-source")
        self.create("ok/mount-target")
        data = os.urandom(2048)
        digest = self.push_blob("ok/mount-source", data)
        mounted = self.call("POST", path_of("/v2/ok/mount-target/blobs/uploads/", mount=digest,
                                            **{"from": "ok/mount-source"}))
        self.assertEqual(mounted.status, 201, mounted)
        self.assertEqual(urllib.parse.urlsplit(mounted.headers["location"]).path,
                         f"/v2/ok/mount-target/blobs/{digest}")
        self.assertEqual(mounted.headers.get("docker-content-digest"), digest)
        self.assertBlob("ok/mount-target", digest, data)

        # Sources that lack the blob (or do not exist): a plain upload session, 202.
        other = os.urandom(1024)
        for source in ("ok/mount-source", "ok/no-such-repository"):
            with self.subTest(source=source):
                fallback = self.call("POST", path_of("/v2/ok/mount-target/blobs/uploads/",
                                                     mount=sha256(other), **{"from": source}))
                self.assertEqual(fallback.status, 202, fallback)
                location = fallback.headers["location"]
                self.assertIn("/v2/ok/mount-target/blobs/uploads/",
                              urllib.parse.urlsplit(location).path)
                done = self.call("PUT", path_of(location, digest=sha256(other)), body=other)
                self.assertEqual(done.status, 201, done)
        self.assertBlob("ok/mount-target", sha256(other), other)
        self.assertRegistryError(self.call("HEAD", f"/v2/ok/mount-source/blobs/{sha256(other)}"),
                                 404, None)

    def test_manifest_head_and_get(self):
        self.create("ok/manifests")
        config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(512)
        self.push_blob("ok/manifests", config)
        self.push_blob("ok/manifests", layer)
        # Odd whitespace: the registry must serve the exact bytes it was given.
        oci = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                          "config": descriptor(OCI_CONFIG, config),
                          "layers": [descriptor(OCI_LAYER, layer)]}, indent=3).encode() + b"\n"
        docker = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                             "config": descriptor(DOCKER_CONFIG, config),
                             "layers": [descriptor(DOCKER_LAYER, layer)]}).encode()
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            descriptor(OCI_MANIFEST, oci, platform={"architecture": "amd64", "os": "linux"})]},
            separators=(",", ":")).encode()
        for tag, body, media_type in [("oci", oci, OCI_MANIFEST), ("docker", docker,
                                                                    DOCKER_MANIFEST),
                                      ("index", index, OCI_INDEX)]:
            with self.subTest(media_type=media_type):
                put = self.put_manifest("ok/manifests", tag, body, media_type=media_type)
                digest = sha256(body)
                self.assertEqual(put.headers.get("docker-content-digest"), digest)
                self.assertEqual(urllib.parse.urlsplit(put.headers["location"]).path,
                                 f"/v2/ok/manifests/manifests/{digest}")
                for reference in (tag, digest):
                    head = self.call("HEAD", f"/v2/ok/manifests/manifests/{reference}",
                                     headers={"Accept": media_type})
                    self.assertEqual(head.status, 200, head)
                    self.assertEqual(head.headers.get("content-type"), media_type, head)
                    self.assertEqual(head.headers.get("content-length"), str(len(body)), head)
                    self.assertEqual(head.headers.get("docker-content-digest"), digest, head)
                    self.assertEqual(head.raw_body, b"")
                    got = self.call("GET", f"/v2/ok/manifests/manifests/{reference}",
                                    headers={"Accept": media_type})
                    self.assertEqual(got.status, 200, got)
                    self.assertEqual(got.headers.get("content-type"), media_type, got)
                    self.assertEqual(got.headers.get("content-length"), str(len(body)), got)
                    self.assertEqual(got.headers.get("docker-content-digest"), digest, got)
                    self.assertEqual(got.raw_body, body)

    def test_blob_range_requests(self):
        self.create("ok/ranges")
        data = os.urandom(1000)
        digest = self.push_blob("ok/ranges", data)
        for value, first, last in [("bytes=0-99", 0, 99), ("bytes=10-19", 10, 19),
                                   ("bytes=900-", 900, 999), ("bytes=-10", 990, 999),
                                   ("bytes=990-5000", 990, 999), ("bytes=999-999", 999, 999),
                                   ("bytes=-5000", 0, 999)]:
            with self.subTest(range=value):
                response = self.call("GET", f"/v2/ok/ranges/blobs/{digest}",
                                     headers={"Range": value})
                self.assertEqual(response.status, 206, response)
                self.assertEqual(response.headers.get("content-range"),
                                 f"bytes {first}-{last}/1000", response)
                self.assertEqual(response.headers.get("content-length"), str(last - first + 1))
                self.assertEqual(response.raw_body, data[first:last + 1])
        whole = self.call("GET", f"/v2/ok/ranges/blobs/{digest}")
        self.assertEqual(whole.status, 200, whole)
        self.assertEqual(whole.headers.get("accept-ranges"), "bytes")

    def test_tags_list_paging(self):
        self.create("ok/tags")
        empty = self.call("GET", "/v2/ok/tags/tags/list")
        self.assertEqual(empty.status, 200, empty)
        self.assertEqual(empty.json["name"], "ok/tags")
        self.assertEqual(empty.json.get("tags") or [], [])
        # Lower-case letters and digits only, so lexical and byte order agree.
        tags = ["g7", "a1", "c3", "e5", "b2", "f6", "d4"]
        _, manifest, _ = self.push_image("ok/tags", "tags", tag=tags[0])
        for tag in tags[1:]:
            self.put_manifest("ok/tags", tag, manifest)
        expected = sorted(tags)

        full = self.call("GET", "/v2/ok/tags/tags/list")
        self.assertEqual(full.status, 200, full)
        self.assertEqual(full.json, {"name": "ok/tags", "tags": expected})
        self.assertNotIn("link", full.headers)

        pages, target = [], "/v2/ok/tags/tags/list?n=3"
        while target:
            page = self.call("GET", target)
            self.assertEqual(page.status, 200, page)
            self.assertEqual(page.json["name"], "ok/tags")
            pages.append(page.json["tags"])
            link = page.headers.get("link")
            target = None
            if link:
                match = re.fullmatch(r'<([^>]+)>;\s*rel="next"', link)
                self.assertTrue(match, link)
                target = path_of(match.group(1))
            self.assertLessEqual(len(pages), 5, pages)
        self.assertEqual(pages, [expected[0:3], expected[3:6], expected[6:]])

        def tags_of(query):
            response = self.call("GET", "/v2/ok/tags/tags/list?" + query)
            self.assertEqual(response.status, 200, response)
            return response

        self.assertEqual(tags_of("n=3&last=c3").json["tags"], ["d4", "e5", "f6"])
        self.assertEqual(tags_of("last=e5").json["tags"], ["f6", "g7"])
        self.assertEqual(tags_of("last=g7").json.get("tags") or [], [])
        exact = tags_of("n=7")
        self.assertEqual(exact.json["tags"], expected)
        self.assertNotIn("link", exact.headers)
        zero = tags_of("n=0")
        self.assertEqual(zero.json.get("tags") or [], [])
        self.assertNotIn("link", zero.headers)

    def test_referrers(self):
        self.create("ok/referrers")
        subject, subject_body, _ = self.push_image("ok/referrers", "subject", tag="v1")
        subject_descriptor = {"mediaType": OCI_MANIFEST, "digest": subject,
                              "size": len(subject_body)}
        empty = b"{}"
        self.push_blob("ok/referrers", empty)
        sbom_blob = b'{"spdxVersion":"SPDX-2.3"}'
        self.push_blob("ok/referrers", sbom_blob)
        signature_config = b'{"signer":"e2e"}'
        self.push_blob("ok/referrers", signature_config)

        sbom_type = "application/vnd.example.sbom.v1"
        signature_type = "application/vnd.example.signature.config.v1+json"
        sbom = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": sbom_type,
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [descriptor("application/spdx+json", sbom_blob)],
            "subject": subject_descriptor,
            "annotations": {"org.example.sbom.format": "json",
                            "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}).encode()
        signature = json.dumps({  # no artifactType: the config's media type stands in for it
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor(signature_type, signature_config), "layers": [],
            "subject": subject_descriptor}).encode()
        referring_index = json.dumps({  # an index without artifactType: none in its descriptor
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [subject_descriptor],
            "subject": subject_descriptor, "annotations": {"org.example.kind": "index"}}).encode()
        unrelated, _, _ = self.push_image("ok/referrers", "unrelated")

        for body, media_type in [(sbom, OCI_MANIFEST), (signature, OCI_MANIFEST),
                                 (referring_index, OCI_INDEX)]:
            put = self.put_manifest("ok/referrers", sha256(body), body, media_type=media_type)
            # MUST for image manifests with a subject; an index may answer it too.
            if media_type == OCI_MANIFEST:
                self.assertEqual(put.headers.get("oci-subject"), subject, put)
            else:
                self.assertIn(put.headers.get("oci-subject"), (None, subject), put)

        expected = {
            sha256(sbom): {"mediaType": OCI_MANIFEST, "digest": sha256(sbom), "size": len(sbom),
                           "artifactType": sbom_type,
                           "annotations": {"org.example.sbom.format": "json",
                                           "org.opencontainers.image.created":
                                               "2024-01-01T00:00:00Z"}},
            sha256(signature): {"mediaType": OCI_MANIFEST, "digest": sha256(signature),
                                "size": len(signature), "artifactType": signature_type},
            sha256(referring_index): {"mediaType": OCI_INDEX, "digest": sha256(referring_index),
                                      "size": len(referring_index),
                                      "annotations": {"org.example.kind": "index"}},
        }

        def referrers(digest, artifact_type=None):
            target = f"/v2/ok/referrers/referrers/{digest}"
            if artifact_type is not None:
                target += "?artifactType=" + urllib.parse.quote(artifact_type, safe="")
            response = self.call("GET", target)
            self.assertEqual(response.status, 200, response)
            self.assertEqual(response.headers.get("content-type"), OCI_INDEX, response)
            self.assertEqual(response.json["schemaVersion"], 2)
            self.assertEqual(response.json["mediaType"], OCI_INDEX)
            if artifact_type is None:
                self.assertNotIn("oci-filters-applied", response.headers)
            else:
                self.assertEqual(response.headers.get("oci-filters-applied"), "artifactType")
            manifests = response.json["manifests"]
            return {descriptor["digest"]: descriptor for descriptor in manifests}, manifests

        listed, manifests = referrers(subject)
        self.assertEqual(len(manifests), 3, manifests)
        self.assertEqual(listed, expected)
        self.assertNotIn(unrelated, listed)
        self.assertEqual(referrers(subject, sbom_type)[0], {sha256(sbom): expected[sha256(sbom)]})
        self.assertEqual(referrers(subject, signature_type)[0],
                         {sha256(signature): expected[sha256(signature)]})
        self.assertEqual(referrers(subject, "application/vnd.example.none")[0], {})
        self.assertEqual(referrers(unrelated)[0], {})
        self.assertEqual(referrers(sha256(b"nothing refers to this"))[0], {})
        bad = self.call("GET", "/v2/ok/referrers/referrers/sha256:not-hex")
        self.assertEqual(bad.status, 400, bad)

        # A referrer may come before its subject (the registry MUST accept it).
        future = {"mediaType": OCI_MANIFEST, "digest": sha256(b"pushed later"), "size": 12}
        early = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "artifactType": sbom_type, "config": descriptor(OCI_EMPTY, empty),
                            "layers": [], "subject": future}).encode()
        put = self.put_manifest("ok/referrers", sha256(early), early)
        self.assertEqual(put.headers.get("oci-subject"), future["digest"])
        self.assertEqual(list(referrers(future["digest"])[0]), [sha256(early)])

        # A deleted referrer is no longer listed.
        self.assertEqual(self.call("DELETE", f"/v2/ok/referrers/manifests/{sha256(sbom)}").status,
                         202)
        self.assertEqual(set(referrers(subject)[0]), {sha256(signature), sha256(referring_index)})

    def test_deletes(self):
        self.create("ok/deletes")
        digest, manifest, layer = self.push_image("ok/deletes", "deletes", tag="v1")
        self.put_manifest("ok/deletes", "v2", manifest)

        # DELETE by tag removes the tag.
        response = self.call("DELETE", "/v2/ok/deletes/manifests/v1")
        self.assertEqual(response.status, 202, response)
        self.assertRegistryError(self.call("GET", "/v2/ok/deletes/manifests/v1"), 404,
                                 "MANIFEST_UNKNOWN")
        self.assertEqual(self.call("GET", "/v2/ok/deletes/tags/list").json["tags"], ["v2"])

        # DELETE by digest removes the manifest and every tag on it.
        response = self.call("DELETE", f"/v2/ok/deletes/manifests/{digest}")
        self.assertEqual(response.status, 202, response)
        for reference in (digest, "v2"):
            self.assertRegistryError(self.call("GET", f"/v2/ok/deletes/manifests/{reference}"),
                                     404, "MANIFEST_UNKNOWN")
            self.assertRegistryError(self.call("HEAD", f"/v2/ok/deletes/manifests/{reference}"),
                                     404, None)
        self.assertEqual(self.call("GET", "/v2/ok/deletes/tags/list").json.get("tags") or [], [])

        # DELETE of a blob.
        response = self.call("DELETE", f"/v2/ok/deletes/blobs/{sha256(layer)}")
        self.assertEqual(response.status, 202, response)
        self.assertRegistryError(self.call("HEAD", f"/v2/ok/deletes/blobs/{sha256(layer)}"), 404,
                                 None)
        self.assertRegistryError(self.call("GET", f"/v2/ok/deletes/blobs/{sha256(layer)}"), 404,
                                 "BLOB_UNKNOWN")
        self.assertRegistryError(self.call("DELETE", f"/v2/ok/deletes/blobs/{sha256(layer)}"),
                                 404, "BLOB_UNKNOWN")
        self.assertRegistryError(self.call("DELETE", "/v2/ok/deletes/blobs/sha256:zz"), 400,
                                 "DIGEST_INVALID")

    def test_sha512_digests(self):
        self.create("ok/sha512")
        data = os.urandom(4096)
        digest = sha512(data)
        created = self.call("POST", path_of("/v2/ok/sha512/blobs/uploads/", digest=digest),
                            body=data)
        self.assertEqual(created.status, 201, created)
        self.assertEqual(created.headers.get("docker-content-digest"), digest)
        self.assertEqual(urllib.parse.urlsplit(created.headers["location"]).path,
                         f"/v2/ok/sha512/blobs/{digest}")
        self.assertBlob("ok/sha512", digest, data)
        hex_digest = digest.split(":", 1)[1]
        self.assertTrue(os.path.isfile(os.path.join(self.server.data_dir, "registry", "blobs",
                                                    "sha512", hex_digest[:2], hex_digest)))

        # Chunked, closed with a sha512 digest.
        chunked = os.urandom(3000)
        location = self.start_upload("ok/sha512")
        patched = self.call("PATCH", path_of(location), body=chunked[:1000],
                            headers={"Content-Range": "0-999"})
        self.assertEqual(patched.status, 202, patched)
        done = self.call("PUT", path_of(patched.headers["location"], digest=sha512(chunked)),
                         body=chunked[1000:], headers={"Content-Range": "1000-2999"})
        self.assertEqual(done.status, 201, done)
        self.assertBlob("ok/sha512", sha512(chunked), chunked)

        # A sha512 that is not the bytes'.
        refused = self.call("POST", path_of("/v2/ok/sha512/blobs/uploads/",
                                            digest=sha512(b"other")), body=data)
        self.assertRegistryError(refused, 400, "DIGEST_INVALID")
        self.assertRegistryError(self.call("HEAD", f"/v2/ok/sha512/blobs/{sha512(b'other')}"),
                                 404, None)

        # A manifest with a sha512 layer, pushed by its sha512 digest.
        config = b'{"os":"linux"}'
        self.push_blob("ok/sha512", config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, config),
                               "layers": [{"mediaType": OCI_LAYER, "digest": digest,
                                           "size": len(data)}]}).encode()
        put = self.put_manifest("ok/sha512", sha512(manifest), manifest)
        self.assertEqual(put.headers.get("docker-content-digest"), sha512(manifest))
        got = self.call("GET", f"/v2/ok/sha512/manifests/{sha512(manifest)}")
        self.assertEqual((got.status, got.raw_body), (200, manifest))
        self.assertEqual(got.headers.get("docker-content-digest"), sha512(manifest))


class LargeUploadTest(RegistryTestCase):
    """256 MiB blobs streamed through raw sockets: a kill -9 midway leaves nothing visible or
    partial, the upload then succeeds, and the server's memory never grows with the blob."""

    def blob_files(self):
        """{path under blobs/: size} for every file in DATA_DIR/registry/blobs."""
        root = os.path.join(self.server.data_dir, "registry", "blobs")
        files = {}
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                files[os.path.relpath(path, root)] = os.path.getsize(path)
        return files

    def assertBlobFilesIntact(self):
        """Every file under blobs/ is <alg>/<hex[:2]>/<hex> and holds exactly those bytes."""
        root = os.path.join(self.server.data_dir, "registry", "blobs")
        for relative in self.blob_files():
            algorithm, prefix, hex_digest = relative.split(os.sep)
            self.assertEqual(prefix, hex_digest[:2], relative)
            hasher = hashlib.new(algorithm)
            with open(os.path.join(root, relative), "rb") as blob:
                for chunk in iter(lambda: blob.read(MIB), b""):
                    hasher.update(chunk)
            self.assertEqual(hasher.hexdigest(), hex_digest, f"{relative} is not its digest")

    def upload_files(self):
        root = os.path.join(self.server.data_dir, "registry", "uploads")
        return {name: os.path.getsize(os.path.join(root, name)) for name in os.listdir(root)}

    def upload_size(self, location):
        status = self.call("GET", path_of(location))
        self.assertEqual(status.status, 204, status)
        return int(status.headers["range"].split("-")[1]) + 1

    def test_upload_killed_midway_leaves_nothing_and_can_be_redone(self):
        self.create("big/crash")
        seed = "crash"
        digest = stream_digest(seed, BIG_BLOB_SIZE)
        hex_digest = digest.split(":", 1)[1]
        small = self.push_blob("big/crash", b"a small blob from before")
        before = self.blob_files()

        # Stream ~100 MiB of a 256 MiB PATCH, wait until the server has it on disk, kill -9.
        location = self.start_upload("big/crash")
        upload = StreamingRequest(self.server.port, "PATCH", path_of(location), {
            "Authorization": self.basic, "Content-Type": "application/octet-stream",
            "Content-Length": str(BIG_BLOB_SIZE)})
        try:
            for chunk in pseudo_random_chunks(seed, BIG_BLOB_SIZE):
                upload.send(chunk)
                if upload.sent >= KILL_AFTER:
                    break
            deadline = time.time() + 30
            while self.upload_size(location) < upload.sent and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(self.upload_size(location), upload.sent)
            # Partial bytes on disk: all but the few MiB in the server's write buffers.
            [on_disk] = self.upload_files().values()
            self.assertGreater(on_disk, upload.sent - 8 * 2**20)
            self.assertLessEqual(on_disk, upload.sent)
            self.server.kill9()
        finally:
            upload.close()

        self.server.start()
        self.assertRegistryError(self.call("HEAD", f"/v2/big/crash/blobs/{digest}"), 404, None)
        self.assertRegistryError(self.call("GET", f"/v2/big/crash/blobs/{digest}"), 404,
                                 "BLOB_UNKNOWN")
        self.assertRegistryError(self.call("GET", path_of(location)), 404, "BLOB_UPLOAD_UNKNOWN")
        after = self.blob_files()
        self.assertEqual(after, before, "the killed upload left files under registry/blobs")
        self.assertNotIn(os.path.join("sha256", hex_digest[:2], hex_digest), after)
        self.assertBlobFilesIntact()
        self.assertEqual(self.upload_files(), {}, "the killed upload's bytes were not removed")
        self.assertEqual(self.call("GET", f"/v2/big/crash/blobs/{small}").raw_body,
                         b"a small blob from before")

        # The same 256 MiB again, to the end: PATCH without Content-Range, then PUT ?digest=.
        location = self.start_upload("big/crash")
        upload = StreamingRequest(self.server.port, "PATCH", path_of(location), {
            "Authorization": self.basic, "Content-Type": "application/octet-stream",
            "Content-Length": str(BIG_BLOB_SIZE)})
        hasher = hashlib.sha256()
        tail = b""
        for chunk in pseudo_random_chunks(seed, BIG_BLOB_SIZE):
            hasher.update(chunk)
            upload.send(chunk)
            tail = chunk
        patched = upload.finish()
        self.assertEqual(patched.status, 202, patched)
        self.assertEqual(patched.headers.get("range"), f"0-{BIG_BLOB_SIZE - 1}")
        self.assertEqual("sha256:" + hasher.hexdigest(), digest)
        done = self.call("PUT", path_of(patched.headers["location"], digest=digest))
        self.assertEqual(done.status, 201, done)

        head = self.call("HEAD", f"/v2/big/crash/blobs/{digest}")
        self.assertEqual(head.status, 200, head)
        self.assertEqual(head.headers.get("content-length"), str(BIG_BLOB_SIZE))
        self.assertEqual(head.headers.get("docker-content-digest"), digest)
        self.assertEqual(self.blob_files().get(os.path.join("sha256", hex_digest[:2], hex_digest)),
                         BIG_BLOB_SIZE)
        end = self.call("GET", f"/v2/big/crash/blobs/{digest}", headers={"Range": "bytes=-4096"})
        self.assertEqual(end.status, 206, end)
        self.assertEqual(end.raw_body, tail[-4096:])
        self.assertEqual(self.upload_files(), {})

    def test_memory_stays_bounded_during_a_256_mib_upload(self):
        self.create("big/memory")
        seed = "memory"
        digest = stream_digest(seed, BIG_BLOB_SIZE)
        pid = self.server.process.pid
        samples = [rss_of(pid)]

        # One streamed single-POST upload with Transfer-Encoding: chunked.
        upload = StreamingRequest(self.server.port, "POST",
                                  path_of("/v2/big/memory/blobs/uploads/", digest=digest),
                                  {"Authorization": self.basic,
                                   "Content-Type": "application/octet-stream"}, chunked=True)
        for chunk in pseudo_random_chunks(seed, BIG_BLOB_SIZE):
            upload.send(chunk)
            if upload.sent % (16 * MIB) == 0:
                samples.append(rss_of(pid))
        created = upload.finish()
        self.assertEqual(created.status, 201, created)
        self.assertEqual(created.headers.get("docker-content-digest"), digest)
        samples.append(rss_of(pid))

        # And back down, hashed as it streams.
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        try:
            connection.request("GET", f"/v2/big/memory/blobs/{digest}",
                               headers={"Authorization": self.basic})
            response = connection.getresponse()
            self.assertEqual(response.status, 200)
            self.assertEqual(response.getheader("content-length"), str(BIG_BLOB_SIZE))
            hasher, received = hashlib.sha256(), 0
            for chunk in iter(lambda: response.read(MIB), b""):
                hasher.update(chunk)
                received += len(chunk)
                if received % (32 * MIB) == 0:
                    samples.append(rss_of(pid))
        finally:
            connection.close()
        self.assertEqual((received, "sha256:" + hasher.hexdigest()), (BIG_BLOB_SIZE, digest))

        peak = rss_of(pid, "VmHWM")  # the process's peak resident set, between samples too
        self.assertLess(max(samples), RSS_LIMIT, f"VmRSS samples (MiB): "
                        f"{[round(sample / MIB, 1) for sample in samples]}")
        self.assertLess(peak, RSS_LIMIT, f"VmHWM {peak / MIB:.1f} MiB")
