"""`wharf image import` and `wharf image pull` (the OCI client in src/oci/) against real
registries: Debian's docker-registry anonymously (the fallback from ECR login), docker-registry
with Bearer-token auth over TLS, and Wharf's own registry. What Wharf pushes is checked with
skopeo and umoci; what it pulls is checked against skopeo's copy."""

import base64
import datetime
import gzip
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import ACCESS_KEY, REGION, SECRET_KEY, WHARF, WharfServer

BUSYBOX = "/bin/busybox"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def make_rootfs(root):
    """A busybox root filesystem: the static binary plus symlinks for a few applets."""
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "tmp"))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "ls", "echo", "cat"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc", "passwd"), "w") as passwd:
        passwd.write("root:x:0:0:root:/root:/bin/sh\n")
    return root


def clean_env(**extra):
    """The environment for a wharf command: no AWS configuration unless given."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("AWS_") and name != "SOURCE_DATE_EPOCH"}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.update(extra)
    return env


def wharf(*args, env=None, stdin=None, check=True):
    result = subprocess.run([WHARF, "--log-level", "warn", *args], env=env or clean_env(),
                            input=stdin, capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"wharf {' '.join(args)} failed ({result.returncode}): "
                             f"{result.stderr}")
    return result


def skopeo(*args, parse=True):
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {result.stderr}")
    return json.loads(result.stdout) if parse else result.stdout


def read_json(path):
    with open(path) as file:
        return json.load(file)


class Layout:
    """An OCI image layout directory."""

    def __init__(self, path):
        self.path = path

    def blob_path(self, digest):
        algorithm, hex_digest = digest.split(":")
        return os.path.join(self.path, "blobs", algorithm, hex_digest)

    def blob(self, digest):
        with open(self.blob_path(digest), "rb") as file:
            return file.read()

    def index(self):
        return read_json(os.path.join(self.path, "index.json"))

    def manifest_for(self, name):
        for entry in self.index()["manifests"]:
            if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == name:
                return entry, json.loads(self.blob(entry["digest"]))
        raise AssertionError(f"no {name} in {self.index()}")

    def blobs(self):
        root = os.path.join(self.path, "blobs")
        for algorithm in os.listdir(root):
            for name in os.listdir(os.path.join(root, algorithm)):
                yield f"{algorithm}:{name}", os.path.join(root, algorithm, name)


class DockerRegistry:
    """Debian's docker-registry on a free port with its storage in a temp dir."""

    def __init__(self, auth=None, tls=None):
        self.dir = tempfile.mkdtemp(prefix="wharf-e2e-registry-")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tls = tls
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": os.path.join(self.dir, "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "e2e"},
        }
        if auth:
            config["auth"] = auth
        if tls:
            config["http"]["tls"] = {"certificate": tls[0], "key": tls[1]}
        self.config_path = os.path.join(self.dir, "config.yml")
        with open(self.config_path, "w") as file:
            json.dump(config, file)  # JSON is YAML
        self.log_path = os.path.join(self.dir, "registry.log")
        self.process = None

    def start(self):
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(["docker-registry", "serve", self.config_path],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("docker-registry exited: " + self.log())
            try:
                self.get("/v2/")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start: " + self.log())

    def get(self, path):
        if self.tls:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=5,
                context=ssl._create_unverified_context())  # the test's own self-signed cert
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def log(self):
        try:
            with open(self.log_path) as log:
                return log.read()
        except OSError:
            return ""

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()  # by its pid
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class ImageTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wharf-e2e-image-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def rootfs(self, name=None):
        """A fresh busybox root filesystem in the test's temp dir."""
        return make_rootfs(tempfile.mkdtemp(prefix=name or "rootfs-", dir=self.tmp))

    def assertLayoutVerified(self, layout):
        """Every blob of a layout is named by its digest."""
        for digest, path in layout.blobs():
            self.assertEqual(sha256_file(path), digest, path)

    def assertBusyboxLayer(self, layer_path):
        with tarfile.open(layer_path, "r:gz") as tar:
            members = {member.name.rstrip("/"): member for member in tar.getmembers()}
            names = [member.name.rstrip("/") for member in tar.getmembers()]
        self.assertEqual(names, sorted(names))
        self.assertEqual(set(names), {"bin", "bin/busybox", "bin/cat", "bin/echo", "bin/ls",
                                      "bin/sh", "etc", "etc/passwd", "tmp"})
        self.assertTrue(members["bin/busybox"].isreg())
        self.assertEqual(members["bin/busybox"].size, os.path.getsize(BUSYBOX))
        self.assertEqual(members["bin/busybox"].mode & 0o7777,
                         os.stat(BUSYBOX).st_mode & 0o7777)
        self.assertTrue(members["bin/sh"].issym())
        self.assertEqual(members["bin/sh"].linkname, "busybox")
        self.assertEqual(members["tmp"].mode & 0o7777, 0o1777)

    def assertRunsInUnpackedBundle(self, layout_path, tag):
        """umoci unpacks the image and its busybox runs."""
        bundle = os.path.join(self.tmp, "bundle-" + tag)
        subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout_path}:{tag}",
                        bundle], check=True, capture_output=True, timeout=120)
        result = subprocess.run([os.path.join(bundle, "rootfs", "bin", "busybox"), "echo",
                                 "hello from the image"], capture_output=True, text=True,
                                check=True)
        self.assertEqual(result.stdout, "hello from the image\n")


@unittest.skipUnless(shutil.which("docker-registry") and os.path.exists(BUSYBOX),
                     "needs docker-registry and busybox-static")
class DockerRegistryTest(ImageTestCase):
    """Plain docker-registry, no auth: imports fall back to anonymous after ECR login fails."""

    @classmethod
    def setUpClass(cls):
        cls.registry = DockerRegistry()
        cls.addClassCleanup(cls.registry.stop)
        cls.registry.start()

    def test_import_pull_and_check_with_skopeo(self):
        ref = f"{self.registry.host}/busybox:1"
        result = wharf("image", "import", self.rootfs(), ref,
                       "--entrypoint", '["/bin/sh", "-c"]', "--cmd", "echo hello",
                       "--env", "A=1", "--env", "GREETING=hi there", "--workdir", "/tmp",
                       "--expose", "80", "--expose", "53/udp", "--label", "team=wharf")
        digest = result.stdout.strip()
        self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")

        inspected = skopeo("inspect", "--tls-verify=false", f"docker://{ref}")
        self.assertEqual(inspected["Digest"], digest)
        self.assertEqual(inspected["Architecture"], "amd64")
        self.assertEqual(inspected["Os"], "linux")
        self.assertEqual(inspected["Env"], ["A=1", "GREETING=hi there"])
        self.assertEqual(inspected["Labels"], {"team": "wharf"})
        raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", parse=False)
        self.assertEqual("sha256:" + hashlib.sha256(raw.encode()).hexdigest(), digest)
        self.assertEqual(json.loads(raw)["mediaType"], OCI_MANIFEST)
        config = skopeo("inspect", "--config", "--tls-verify=false", f"docker://{ref}")
        self.assertEqual(config["config"]["Entrypoint"], ["/bin/sh", "-c"])
        self.assertEqual(config["config"]["Cmd"], ["echo", "hello"])
        self.assertEqual(config["config"]["WorkingDir"], "/tmp")
        self.assertEqual(config["config"]["ExposedPorts"], {"80/tcp": {}, "53/udp": {}})
        self.assertEqual(config["rootfs"]["type"], "layers")
        self.assertEqual(len(config["rootfs"]["diff_ids"]), 1)

        # Pulled back by the client: same manifest, every blob verified.
        ours = Layout(os.path.join(self.tmp, "ours"))
        pulled = wharf("image", "pull", ref, ours.path)
        self.assertEqual(pulled.stdout.strip(), digest)
        self.assertLayoutVerified(ours)
        entry, manifest = ours.manifest_for("1")
        self.assertEqual(entry["digest"], digest)
        self.assertEqual(entry["mediaType"], OCI_MANIFEST)
        layer = manifest["layers"][0]
        self.assertEqual(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip")
        with open(ours.blob_path(layer["digest"]), "rb") as file:
            diff_id = "sha256:" + hashlib.sha256(gzip.decompress(file.read())).hexdigest()
        self.assertEqual(diff_id, config["rootfs"]["diff_ids"][0])
        self.assertBusyboxLayer(ours.blob_path(layer["digest"]))

        # skopeo's copy of the same image holds the same bytes.
        theirs = Layout(os.path.join(self.tmp, "theirs"))
        skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{theirs.path}:1",
               parse=False)
        their_entry, their_manifest = theirs.manifest_for("1")
        self.assertEqual(their_entry["digest"], digest)
        self.assertEqual(theirs.blob(layer["digest"]), ours.blob(layer["digest"]))
        self.assertEqual(theirs.blob(manifest["config"]["digest"]),
                         ours.blob(manifest["config"]["digest"]))
        self.assertRunsInUnpackedBundle(ours.path, "1")

    def test_import_from_a_tar_with_aws_keys_falls_back_to_anonymous(self):
        tar_path = os.path.join(self.tmp, "rootfs.tar.gz")
        with tarfile.open(tar_path, "w:gz") as tar:
            tar.add(self.rootfs(), arcname=".")
        # Keys are configured, so wharf asks the registry host for an ECR token first; a
        # docker-registry has no ECR API, so the push goes ahead anonymously.
        env = clean_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                        AWS_DEFAULT_REGION=REGION, SOURCE_DATE_EPOCH="1700000000")
        ref = f"{self.registry.host}/fromtar:latest"
        result = subprocess.run([WHARF, "--log-level", "info", "image", "import", tar_path, ref],
                                env=env, capture_output=True, text=True, timeout=180)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("is no ECR API", result.stderr)
        self.assertIn("anonymous", result.stderr)
        digest = result.stdout.strip()
        self.assertEqual(skopeo("inspect", "--tls-verify=false", f"docker://{ref}")["Digest"],
                         digest)
        layout = Layout(os.path.join(self.tmp, "pulled"))
        self.assertEqual(wharf("image", "pull", ref, layout.path).stdout.strip(), digest)
        _, manifest = layout.manifest_for("latest")
        self.assertBusyboxLayer(layout.blob_path(manifest["layers"][0]["digest"]))

        # An ECR endpoint that is not there at all: also anonymous (and, with the same
        # SOURCE_DATE_EPOCH, the same image).
        env["AWS_ENDPOINT_URL_ECR"] = f"http://127.0.0.1:{free_port()}"
        again = wharf("image", "import", tar_path, f"{self.registry.host}/fromtar:2", env=env)
        self.assertEqual(again.stdout.strip(), digest)

    def test_chunked_upload(self):
        # 64 KiB PATCH chunks with Content-Range, then the closing PUT ?digest=.
        env = clean_env(SOURCE_DATE_EPOCH="1700000000")
        rootfs = self.rootfs()
        chunked = wharf("image", "import", rootfs, f"{self.registry.host}/chunked:1",
                        "--chunk-size", "65536", env=env)
        whole = wharf("image", "import", rootfs, f"{self.registry.host}/whole:1",
                      "--chunk-size", "0", env=env)
        self.assertEqual(chunked.stdout, whole.stdout)
        self.assertEqual(skopeo("inspect", "--tls-verify=false",
                                f"docker://{self.registry.host}/chunked:1")["Digest"],
                         chunked.stdout.strip())
        layout = Layout(os.path.join(self.tmp, "chunked"))
        wharf("image", "pull", f"{self.registry.host}/chunked:1", layout.path)
        self.assertLayoutVerified(layout)

    def test_source_date_epoch_makes_imports_reproducible(self):
        rootfs = self.rootfs()
        env = clean_env(SOURCE_DATE_EPOCH="1700000000")
        first = wharf("image", "import", rootfs, f"{self.registry.host}/repro:a", env=env)
        os.utime(os.path.join(rootfs, "etc", "passwd"))  # newer file times do not matter
        second = wharf("image", "import", rootfs, f"{self.registry.host}/repro:b", env=env)
        self.assertEqual(first.stdout, second.stdout)
        config = skopeo("inspect", "--config", "--tls-verify=false",
                        f"docker://{self.registry.host}/repro:a")
        self.assertEqual(config["created"], "2023-11-14T22:13:20Z")

    def test_pulls_docker_schema2_and_picks_amd64_from_an_index(self):
        source = f"{self.registry.host}/base:1"
        wharf("image", "import", self.rootfs(), source)
        # skopeo converts it to a Docker schema 2 manifest in another repository.
        docker_ref = f"{self.registry.host}/docker2:1"
        skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--format", "v2s2",
               f"docker://{source}", f"docker://{docker_ref}", parse=False)
        docker_digest = skopeo("inspect", "--tls-verify=false", f"docker://{docker_ref}")["Digest"]
        layout = Layout(os.path.join(self.tmp, "docker2"))
        self.assertEqual(wharf("image", "pull", docker_ref, layout.path).stdout.strip(),
                         docker_digest)
        entry, manifest = layout.manifest_for("1")
        self.assertEqual(entry["mediaType"], DOCKER_MANIFEST)
        self.assertEqual(manifest["mediaType"], DOCKER_MANIFEST)
        self.assertLayoutVerified(layout)

        # An index with an arm64 image listed first: the pull takes the amd64 one.
        index_layout = Layout(os.path.join(self.tmp, "multi"))
        skopeo("copy", "--src-tls-verify=false", f"docker://{source}",
               f"oci:{index_layout.path}:amd64", parse=False)
        amd64_entry, amd64_manifest = index_layout.manifest_for("amd64")
        arm_config = json.loads(index_layout.blob(amd64_manifest["config"]["digest"]))
        arm_config["architecture"] = "arm64"
        arm_config["variant"] = "v8"
        arm_manifest = dict(amd64_manifest)
        arm_manifest["config"] = self._add_blob(index_layout, json.dumps(arm_config).encode(),
                                                amd64_manifest["config"]["mediaType"])
        arm_entry = self._add_blob(index_layout, json.dumps(arm_manifest).encode(), OCI_MANIFEST)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            dict(arm_entry, platform={"architecture": "arm64", "os": "linux", "variant": "v8"}),
            {"mediaType": OCI_MANIFEST, "digest": amd64_entry["digest"],
             "size": amd64_entry["size"], "platform": {"architecture": "amd64", "os": "linux"}},
        ]}
        index_entry = self._add_blob(index_layout, json.dumps(index).encode(), OCI_INDEX)
        with open(os.path.join(index_layout.path, "index.json"), "w") as file:
            json.dump({"schemaVersion": 2, "manifests": [dict(
                index_entry, annotations={"org.opencontainers.image.ref.name": "multi"})]}, file)
        multi_ref = f"{self.registry.host}/multi:1"
        skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{index_layout.path}:multi",
               f"docker://{multi_ref}", parse=False)
        pulled = Layout(os.path.join(self.tmp, "multi-pulled"))
        self.assertEqual(wharf("image", "pull", multi_ref, pulled.path).stdout.strip(),
                         amd64_entry["digest"])
        self.assertLayoutVerified(pulled)

    @staticmethod
    def _add_blob(layout, data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(layout.blob_path(digest), "wb") as file:
            file.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def test_errors_say_what_failed(self):
        missing = wharf("image", "pull", f"{self.registry.host}/busybox:nope",
                        os.path.join(self.tmp, "x"), check=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn(f"pulling manifest {self.registry.host}/busybox:nope: HTTP 404: "
                      "MANIFEST_UNKNOWN: manifest unknown", missing.stderr)
        no_rootfs = wharf("image", "import", os.path.join(self.tmp, "nothing"),
                          f"{self.registry.host}/x:1", check=False)
        self.assertEqual(no_rootfs.returncode, 1)
        self.assertIn("must be a directory or a tar file", no_rootfs.stderr)
        bad_ref = wharf("image", "import", self.rootfs(), f"{self.registry.host}/UPPER:1",
                        check=False)
        self.assertEqual(bad_ref.returncode, 1)
        self.assertIn("invalid repository name", bad_ref.stderr)
        bad_port = wharf("image", "import", self.rootfs("r2"), f"{self.registry.host}/x:1",
                         "--expose", "http", check=False)
        self.assertEqual(bad_port.returncode, 1)
        self.assertIn("exposed port 'http'", bad_port.stderr)
        nobody = wharf("image", "pull", f"127.0.0.1:{free_port()}/x:1",
                       os.path.join(self.tmp, "y"), check=False)
        self.assertEqual(nobody.returncode, 1)
        self.assertIn("pulling manifest 127.0.0.1:", nobody.stderr)
        self.assertIn("Failed to connect", nobody.stderr)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker token server: RS256 JWTs with an x5c chain, the way docker-registry's token
    auth wants them. alice:s3cret gets what she asks for; anonymous callers may only pull."""

    USER, PASSWORD = "alice", "s3cret"
    SERVICE, ISSUER = "e2e-registry", "e2e-issuer"

    def __init__(self, key, cert_der):
        self.key = key
        self.cert_der = cert_der
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    given = base64.b64decode(auth[6:]).decode()
                    if given != f"{server.USER}:{server.PASSWORD}":
                        return self._answer(401, {"details": "incorrect username or password"})
                    user = server.USER
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    allowed = [action for action in actions.split(",")
                               if user or action == "pull"]
                    access.append({"type": kind, "name": name, "actions": allowed})
                token = server.token(user or "", access)
                self._answer(200, {"token": token, "expires_in": 300})

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, subject, access):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.ISSUER, "sub": subject, "aud": self.SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed(directory):
    """An RSA key and a self-signed certificate for 127.0.0.1, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import ipaddress
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wharf e2e")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as file:
        file.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()))
    return key, cert.public_bytes(serialization.Encoding.DER), cert_path, key_path


def _has_cryptography():
    try:
        import cryptography  # noqa: F401
        return True
    except ImportError:
        return False


@unittest.skipUnless(shutil.which("docker-registry") and os.path.exists(BUSYBOX) and
                     _has_cryptography(),
                     "needs docker-registry, busybox-static and python3-cryptography")
class BearerTokenRegistryTest(ImageTestCase):
    """docker-registry with token auth, served over TLS with a self-signed certificate."""

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="wharf-e2e-certs-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        key, cert_der, cert_path, key_path = self_signed(cls.certs)
        cls.tokens = TokenServer(key, cert_der)
        cls.addClassCleanup(cls.tokens.stop)
        cls.registry = DockerRegistry(
            auth={"token": {"realm": cls.tokens.realm, "service": TokenServer.SERVICE,
                            "issuer": TokenServer.ISSUER, "rootcertbundle": cert_path}},
            tls=(cert_path, key_path))
        cls.addClassCleanup(cls.registry.stop)
        cls.registry.start()

    def import_as_alice(self, ref, *extra, check=True):
        return wharf("image", "import", self.rootfs(), ref, "--https", "--insecure",
                     "--username", TokenServer.USER, "--password-stdin", *extra,
                     stdin=TokenServer.PASSWORD + "\n", check=check)

    def test_push_with_credentials_and_pull_anonymously(self):
        ref = f"{self.registry.host}/secure/busybox:1"
        before = len(self.tokens.requests)
        digest = self.import_as_alice(ref).stdout.strip()
        self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")
        # One token for the whole push, asked for with pull and push.
        new_requests = self.tokens.requests[before:]
        self.assertEqual(len(new_requests), 1, new_requests)
        self.assertIn("scope=repository%3Asecure%2Fbusybox%3Apull%2Cpush",
                      new_requests[0].replace("%3a", "%3A").replace("%2c", "%2C")
                      .replace("%2f", "%2F"))
        inspected = skopeo("inspect", "--tls-verify=false",
                           f"--creds={TokenServer.USER}:{TokenServer.PASSWORD}",
                           f"docker://{ref}")
        self.assertEqual(inspected["Digest"], digest)

        # Anonymous callers get pull-only tokens: enough to pull.
        layout = Layout(os.path.join(self.tmp, "pulled"))
        pulled = wharf("image", "pull", ref, layout.path, "--https", "--insecure")
        self.assertEqual(pulled.stdout.strip(), digest)
        self.assertLayoutVerified(layout)
        self.assertRunsInUnpackedBundle(layout.path, "1")

    def test_refusals(self):
        ref = f"{self.registry.host}/secure/refused:1"
        anonymous = wharf("image", "import", self.rootfs(), ref, "--https", "--insecure",
                          check=False)
        self.assertEqual(anonymous.returncode, 1)
        self.assertIn("HTTP 401", anonymous.stderr)
        self.assertIn("no credentials were given", anonymous.stderr)

        wrong = wharf("image", "import", self.rootfs("r2"), ref, "--https", "--insecure",
                      "--username", "alice", "--password-stdin", stdin="wrong\n", check=False)
        self.assertEqual(wrong.returncode, 1)
        self.assertIn(f"getting a token from {self.tokens.realm}: HTTP 401", wrong.stderr)

        # The certificate is self-signed: without --insecure, TLS verification fails.
        self.import_as_alice(ref)
        strict = wharf("image", "pull", ref, os.path.join(self.tmp, "strict"), "--https",
                       check=False)
        self.assertEqual(strict.returncode, 1)
        self.assertIn("certificate", strict.stderr)

        # Plain http to a TLS listener is no registry.
        plain = wharf("image", "pull", ref, os.path.join(self.tmp, "plain"), check=False)
        self.assertEqual(plain.returncode, 1)
        self.assertIn("HTTP 400", plain.stderr)


def _wharf_registry_missing(server):
    """Why the Wharf server cannot take an import yet, or None when it can."""
    try:
        url = urllib.parse.urlsplit(server.endpoint)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        connection.request("GET", "/v2/")
        response = connection.getresponse()
        response.read()
        connection.close()
    except OSError as error:
        return f"GET /v2/ failed: {error}"
    if response.status not in (200, 401) or not response.getheader(
            "Docker-Distribution-API-Version"):
        return f"wharf server does not serve the registry at /v2/ yet (HTTP {response.status})"
    from botocore.exceptions import ClientError
    try:
        server.client("ecr").describe_repositories()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        return f"wharf server does not serve the ECR API yet (DescribeRepositories: {code})"
    return None


@unittest.skipUnless(os.path.exists(BUSYBOX), "needs busybox-static")
class WharfRegistryTest(ImageTestCase):
    """Import into Wharf's own registry with ECR credentials from the AWS configuration."""

    @classmethod
    def setUpClass(cls):
        cls.server = WharfServer()
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        reason = _wharf_registry_missing(cls.server)
        if reason:
            raise unittest.SkipTest(reason)
        cls.ecr = cls.server.client("ecr")
        cls.host = f"127.0.0.1:{cls.server.port}"

    def aws_env(self, **extra):
        return clean_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                         AWS_DEFAULT_REGION=REGION, **extra)

    def test_import_with_ecr_credentials_and_pull_back(self):
        self.ecr.create_repository(repositoryName="e2e/busybox")
        ref = f"{self.host}/e2e/busybox:v1"
        # The ECR endpoint defaults to the registry host: Wharf serves both on one listener.
        result = subprocess.run([WHARF, "--log-level", "info", "image", "import", self.rootfs(),
                                 ref, "--cmd", "/bin/sh"], env=self.aws_env(),
                                capture_output=True, text=True, timeout=180)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("ECR credentials from", result.stderr)
        digest = result.stdout.strip()
        self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")

        images = self.ecr.describe_images(repositoryName="e2e/busybox")["imageDetails"]
        self.assertEqual([image["imageDigest"] for image in images], [digest])
        self.assertEqual(images[0]["imageTags"], ["v1"])

        layout = Layout(os.path.join(self.tmp, "pulled"))
        pulled = wharf("image", "pull", ref, layout.path, env=self.aws_env())
        self.assertEqual(pulled.stdout.strip(), digest)
        self.assertLayoutVerified(layout)
        _, manifest = layout.manifest_for("v1")
        self.assertBusyboxLayer(layout.blob_path(manifest["layers"][0]["digest"]))

        # skopeo, logged in the way `aws ecr get-login-password` users do, sees the same image.
        token = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, password = base64.b64decode(token).decode().split(":", 1)
        inspected = skopeo("inspect", "--tls-verify=false", f"--creds={user}:{password}",
                           f"docker://{ref}")
        self.assertEqual(inspected["Digest"], digest)

        # The endpoint may also be given explicitly.
        again = wharf("image", "import", self.rootfs("again"), f"{self.host}/e2e/busybox:v2",
                      env=self.aws_env(AWS_ENDPOINT_URL_ECR=self.server.endpoint))
        self.assertRegex(again.stdout.strip(), r"^sha256:[0-9a-f]{64}$")

    def test_wrong_keys_are_an_error_not_anonymous(self):
        env = clean_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY="wrong-secret",
                        AWS_DEFAULT_REGION=REGION)
        result = wharf("image", "import", self.rootfs(), f"{self.host}/e2e/denied:v1", env=env,
                       check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("ECR GetAuthorizationToken", result.stderr)
        self.assertIn("InvalidSignatureException", result.stderr)


if __name__ == "__main__":
    unittest.main()
