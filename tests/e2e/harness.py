"""Shared e2e plumbing: start a real `wharf server`, talk to it with boto3, the aws CLI and raw
SigV4-signed HTTP requests."""

import atexit
import datetime
import glob
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from unittest import mock

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
from botocore.exceptions import ClientError

WHARF = os.environ.get("WHARF_BINARY", os.path.join(os.path.dirname(__file__), "../../build/wharf"))
ACCESS_KEY = "AKIAWHARFE2ETEST0001"
SECRET_KEY = "e2e-secret-key-0123456789abcdefghijklmno"
ACCOUNT = "123456789012"
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

# Every server process this interpreter started and has not yet stopped; killed at exit so a
# crashing test run never leaves a wharf behind.
_running = set()


@atexit.register
def _kill_leftovers():
    for server in list(_running):
        server.stop(signal.SIGKILL)
        server.cleanup()


class ManagedProcess:
    """A wharf process a test started: signalled and reaped by PID, never by name."""

    process = None

    def running(self):
        return self.process is not None and self.process.poll() is None

    def signal_and_wait(self, sig):
        """Signals the process (if running) and waits; returns its exit status or None."""
        if self.running():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _running.discard(self)
        return self.process.returncode if self.process else None

    def kill9(self):
        return self.stop(signal.SIGKILL)


class RawResponse:
    """Status, headers and (JSON-decoded when possible) body of a raw HTTP exchange."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.raw_body = body
        try:
            self.json = json.loads(body) if body else {}
        except ValueError:
            self.json = None

    @property
    def error_type(self):
        """The AWS error name, without any `namespace#` prefix."""
        if not isinstance(self.json, dict):
            return None
        value = self.json.get("__type") or self.headers.get("x-amzn-errortype", "")
        return value.split("#")[-1].split(":")[0]

    @property
    def message(self):
        if not isinstance(self.json, dict):
            return ""
        return self.json.get("message") or self.json.get("Message") or ""

    def __repr__(self):
        return f"RawResponse({self.status}, {self.headers}, {self.raw_body[:500]!r})"


class WharfServer(ManagedProcess):
    """One `wharf server` process on a free port with its own data dir."""

    def __init__(self, data_dir=None, extra_args=()):
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="wharf-e2e-")
        self.extra_args = list(extra_args)
        self.process = None
        self.endpoint = None
        self._port = None
        # stderr goes to a file (never a pipe nobody drains, which would stall a chatty server).
        log_fd, self.log_path = tempfile.mkstemp(prefix="wharf-e2e-", suffix=".log")
        os.close(log_fd)

    def start(self, port=None):
        """Starts the server; on `port` if given, else on the port it last had, else a free one."""
        if port is None:
            port = self._port or 0
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [WHARF, "--log-level", "warn", "server", "--listen", f"127.0.0.1:{port}",
                 "--data-dir", self.data_dir, "--admin-access-key-id", ACCESS_KEY,
                 "--admin-secret-access-key", SECRET_KEY, *self.extra_args],
                stdout=subprocess.PIPE, stderr=log, text=True)
        _running.add(self)
        lines = queue.Queue()

        def drain(stream):
            # Reads stdout to its end so the server never blocks on a full pipe.
            with stream:
                for line in stream:
                    lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, args=(self.process.stdout,), daemon=True).start()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.endpoint = match.group(1)
                self._port = int(self.endpoint.rsplit(":", 1)[1])
                return self
        self.stop(signal.SIGKILL)
        raise RuntimeError("wharf server did not start: " + self.log())

    @property
    def port(self):
        return self._port

    def log(self):
        try:
            with open(self.log_path) as log:
                return log.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        """Signals the server and waits for it; returns its exit status (None if not running)."""
        status = self.signal_and_wait(sig)
        self.process = None
        return status

    def restart(self):
        self.stop()
        return self.start(self._port)

    def cleanup(self):
        if self.process and self.process.poll() is not None:
            sys.stderr.write(f"\nwharf exited on its own with status {self.process.returncode}\n")
        self.stop()
        log = self.log().strip()
        if log:  # warnings and errors only (--log-level warn): worth seeing next to a failure
            sys.stderr.write(f"\n--- wharf server log ({self.data_dir}) ---\n{log}\n---\n")
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def client(self, service="ecs", region=REGION, secret=SECRET_KEY, validate=True,
               access_key=ACCESS_KEY, **config):
        return boto3.session.Session().client(
            service, endpoint_url=self.endpoint, region_name=region,
            aws_access_key_id=access_key, aws_secret_access_key=secret,
            config=botocore.config.Config(parameter_validation=validate,
                                          retries={"mode": "standard", "total_max_attempts": 1},
                                          **config))

    def aws(self, *args, check=True, region=REGION):
        """Runs the real aws CLI against this server; returns parsed JSON output, or the
        CompletedProcess when check=False."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_DEFAULT_REGION=region, AWS_ENDPOINT_URL=self.endpoint,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_MAX_ATTEMPTS="1", AWS_PAGER="")
        result = subprocess.run(["aws", "--output", "json", *args], env=env, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {result.stderr}")
        if not check:
            return result
        return json.loads(result.stdout) if result.stdout.strip() else {}

    def signed_request(self, operation, body=b"{}", *, target=None, region=REGION,
                       access_key=ACCESS_KEY, secret=SECRET_KEY, signed_at=None, sign=True,
                       headers=None, service="ecs"):
        """POSTs `body` to the endpoint as ECS `operation`, SigV4-signed with botocore.

        `target` overrides the whole X-Amz-Target header; `signed_at` (an aware datetime) signs
        as if the clock said so; `service` is the signing name in the credential scope;
        sign=False sends no Authorization at all."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        request = botocore.awsrequest.AWSRequest(
            method="POST", url=self.endpoint + "/", data=body,
            headers={"X-Amz-Target": target or f"{TARGET_PREFIX}.{operation}",
                     "Content-Type": JSON_CONTENT_TYPE, **(headers or {})})
        if sign:
            signer = botocore.auth.SigV4Auth(
                botocore.credentials.Credentials(access_key, secret), service, region)
            if signed_at is None:
                signer.add_auth(request)
            else:
                with mock.patch.object(botocore.auth, "get_current_datetime",
                                       return_value=signed_at):
                    signer.add_auth(request)
        prepared = request.prepare()
        url = urllib.parse.urlsplit(self.endpoint)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            connection.request("POST", "/", body=prepared.body, headers=dict(prepared.headers))
            response = connection.getresponse()
            return RawResponse(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def oversized_request(self, size):
        """Sends a signed request whose body is `size` bytes and returns the server's answer.

        The server may answer (and hang up) before the body is through, so the body goes out on
        another thread and write errors are expected."""
        body = b'{"clusterName":"' + b"x" * max(0, size - 18) + b'"}'
        request = botocore.awsrequest.AWSRequest(
            method="POST", url=self.endpoint + "/", data=body,
            headers={"X-Amz-Target": f"{TARGET_PREFIX}.CreateCluster",
                     "Content-Type": JSON_CONTENT_TYPE})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "ecs",
                                REGION).add_auth(request)
        prepared = request.prepare()
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in prepared.headers.items())
        head += "Connection: close\r\n\r\n"
        sock = socket.create_connection(("127.0.0.1", self._port), timeout=60)

        def send_body():
            try:
                sock.sendall(head.encode())
                for offset in range(0, len(body), 1 << 20):
                    sock.sendall(body[offset:offset + (1 << 20)])
            except OSError:
                pass  # the server refused the rest, as it may

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass  # a reset after the response is fine; what arrived is what counts
        finally:
            sender.join(timeout=60)
            sock.close()
        return _parse_http_response(received)


class WharfAgent(ManagedProcess):
    """One `wharf agent` process with its own data dir, registering with `server`'s cluster."""

    def __init__(self, server, cluster, data_dir=None, extra_args=(), log_level="warn"):
        self.server = server
        self.cluster = cluster
        self.log_level = log_level
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="wharf-e2e-agent-")
        self.extra_args = list(extra_args)
        self.process = None
        log_fd, self.log_path = tempfile.mkstemp(prefix="wharf-e2e-agent-", suffix=".log")
        os.close(log_fd)

    def start(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [WHARF, "--log-level", self.log_level, "agent", "--server", self.server.endpoint,
                 "--cluster", self.cluster, "--data-dir", self.data_dir, *self.extra_args],
                stdout=subprocess.DEVNULL, stderr=log, env=env)
        _running.add(self)
        return self

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def saved_arn(self):
        """The container instance ARN the agent saved, or None before it registered."""
        return saved_agent_field(self.data_dir, "containerInstanceArn")

    def wait_registered(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            arn = self.saved_arn()
            if arn:
                return arn
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("wharf agent did not register: " + self.log())

    def log(self):
        try:
            with open(self.log_path) as log:
                return log.read()
        except OSError:
            return ""


    def wait_exit(self, timeout=30):
        """Waits for the agent to end on its own; returns its exit status."""
        return self.process.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM):
        return self.signal_and_wait(sig)

    def instance_id(self):
        """The host identity the agent saved ("i-" and 17 hex digits), or None."""
        return saved_agent_field(self.data_dir, "instanceId")

    def purge_containers(self):
        purge_agent_data(self.data_dir)

    def cleanup(self):
        self.stop()
        self.purge_containers()
        log = self.log().strip()
        if log:
            sys.stderr.write(f"\n--- wharf agent log ({self.data_dir}) ---\n{log}\n---\n")
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def tcp(port, cidrs=(), groups=()):
    """An EC2 IpPermission for one TCP port from CIDRs and security groups."""
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": cidr} for cidr in cidrs],
            "UserIdGroupPairs": [{"GroupId": group} for group in groups]}


def saved_agent_field(data_dir, key):
    """A field of the registration an agent saved in its data dir, or None."""
    try:
        with open(os.path.join(data_dir, "state", "agent.json")) as saved:
            return json.load(saved).get(key) or None
    except (OSError, ValueError):
        return None


def runtime_command(runtime, wharf=WHARF):
    """How the agent of binary `wharf` runs OCI runtime `runtime`: crun through the wharf-shim
    beside it on a hybrid cgroup host, where crun refuses to run otherwise."""
    path = shutil.which(runtime)
    if runtime == "crun" and os.path.ismount("/sys/fs/cgroup/unified"):
        return [os.path.join(os.path.dirname(wharf), "wharf-shim"), "--cgroup-v1", "--", path]
    return [path]


def runtime_commands():
    """runtime_command() of each OCI runtime installed here."""
    return [runtime_command(runtime) for runtime in ("crun", "runc") if shutil.which(runtime)]


def purge_agent_data(data_dir):
    """Removes whatever containers, mounts and cgroups the tasks of the agent with this data
    directory left: a stopped agent leaves its containers running by design, so a test that did
    not stop its tasks would leave them behind."""
    instance = saved_agent_field(data_dir, "instanceId")
    if instance:
        root = os.path.join("/run/wharf", instance, "runtime")
        if os.path.isdir(root):
            for container in os.listdir(root):
                for runtime in runtime_commands():
                    subprocess.run(runtime + ["--root", root, "delete", "-f", container],
                                   capture_output=True)
        run_dir = os.path.join("/run/wharf", instance)
        for point in reversed(mount_points_under(run_dir, include_itself=True)):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        # The agent's bridge network (names end in the instance id's last 10 characters).
        suffix = instance[-10:]
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in netns.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"wharf-{suffix}-"):
                subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        subprocess.run(["ip", "link", "delete", f"wharf{suffix}"], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", f"wharf_{suffix}"], capture_output=True)
    for point in reversed(mount_points_under(data_dir)):
        subprocess.run(["umount", "-l", point], capture_output=True)
    tasks_dir = os.path.join(data_dir, "containers")
    task_ids = os.listdir(tasks_dir) if os.path.isdir(tasks_dir) else []
    for hierarchy in glob.glob("/sys/fs/cgroup/*/") + ["/sys/fs/cgroup/"]:
        for task_id in task_ids:
            remove_cgroup(os.path.join(hierarchy, "wharf", task_id))
        try:
            os.rmdir(os.path.join(hierarchy, "wharf"))  # only once no agent's task uses it
        except OSError:
            pass
    for leftover in ("/run/wharf/network.lock", "/run/wharf/netns.lock", "/run/wharf"):
        try:
            os.rmdir(leftover) if leftover == "/run/wharf" else os.unlink(leftover)
        except OSError:
            pass


def mount_points_under(directory, include_itself=False):
    """The mount points beneath `directory` (and on it, with include_itself), shallowest
    first."""
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return sorted((p for p in points
                   if p.startswith(directory + "/") or (include_itself and p == directory)),
                  key=len)


def remove_cgroup(path):
    """Removes a cgroup directory and its children (rmdir, deepest first); missing is fine."""
    if not os.path.isdir(path):
        return
    for dirpath, _, _ in sorted(os.walk(path), key=lambda entry: len(entry[0]), reverse=True):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def _parse_http_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return RawResponse(0, [], data)
    status = int(lines[0].split()[1])
    headers = [tuple(part.strip() for part in line.split(":", 1))
               for line in lines[1:] if ":" in line]
    return RawResponse(status, headers, body)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class WharfTestCase(unittest.TestCase):
    """A test class with one server shared by its tests."""

    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = WharfServer()
        cls.addClassCleanup(cls.server.cleanup)
        cls.server.start()
        cls.ecs = cls.server.client()

    def assertAwsError(self, call, code, status=400, message=None):
        """Runs `call` and checks it fails with the AWS exception `code` (or one of a tuple of
        codes) and HTTP `status`; `message` must appear in the error message."""
        with self.assertRaises(ClientError) as caught:
            call()
        error = caught.exception.response
        codes = code if isinstance(code, tuple) else (code,)
        self.assertIn(error["Error"]["Code"], codes, error)
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], status, error)
        if message:
            self.assertIn(message, error["Error"].get("Message", ""), error)
        return error

    def assertRawError(self, response, code, status=400, message=None):
        """Checks a RawResponse is the AWS error `code` with HTTP `status`."""
        self.assertEqual(response.status, status, response)
        self.assertEqual(response.error_type, code, response)
        if message:
            self.assertIn(message, response.message, response)
        self.assertTrue(response.headers.get("x-amzn-requestid"), response)
