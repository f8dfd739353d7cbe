"""Shared e2e plumbing: start a real `wharf server`, talk to it with boto3 and the aws CLI."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import boto3
import botocore.config

WHARF = os.environ.get("WHARF_BINARY", os.path.join(os.path.dirname(__file__), "../../build/wharf"))
ACCESS_KEY = "AKIAWHARFE2ETEST0001"
SECRET_KEY = "e2e-secret-key-0123456789abcdefghijklmno"
ACCOUNT = "123456789012"
REGION = "us-east-1"


class WharfServer:
    """One `wharf server` process on a free port with its own data dir."""

    def __init__(self, data_dir=None, extra_args=()):
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="wharf-e2e-")
        self.extra_args = list(extra_args)
        self.process = None
        self.endpoint = None

    def start(self, port=0):
        self.process = subprocess.Popen(
            [WHARF, "--log-level", "warn", "server", "--listen", f"127.0.0.1:{port}",
             "--data-dir", self.data_dir, "--admin-access-key-id", ACCESS_KEY,
             "--admin-secret-access-key", SECRET_KEY, *self.extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.endpoint = match.group(1)
                return self
        self.process.kill()
        raise RuntimeError("wharf server did not start: " + self.process.stderr.read())

    @property
    def port(self):
        return int(self.endpoint.rsplit(":", 1)[1])

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.process.stdout.close()
            self.process.stderr.close()
        self.process = None

    def kill9(self):
        self.stop(signal.SIGKILL)

    def restart(self):
        port = self.port
        self.stop()
        return self.start(port)

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def client(self, service="ecs", region=REGION, secret=SECRET_KEY, validate=True, **config):
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=region,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret,
            config=botocore.config.Config(parameter_validation=validate,
                                          retries={"max_attempts": 1}, **config))

    def aws(self, *args, check=True, region=REGION):
        """Runs the real aws CLI against this server; returns parsed JSON output."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_DEFAULT_REGION=region, AWS_ENDPOINT_URL=self.endpoint,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_MAX_ATTEMPTS="1")
        result = subprocess.run(["aws", "--output", "json", *args], env=env, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {result.stderr}")
        if not check:
            return result
        return json.loads(result.stdout) if result.stdout.strip() else {}


class WharfTestCase(unittest.TestCase):
    """A test class with one server shared by its tests."""

    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = WharfServer().start()
        cls.ecs = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def assertAwsError(self, call, code, status=400, message=None):
        """Runs `call` and checks it fails with the AWS exception `code` and HTTP `status`."""
        from botocore.exceptions import ClientError
        with self.assertRaises(ClientError) as caught:
            call()
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"], code, error)
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], status, error)
        if message:
            self.assertIn(message, error["Error"]["Message"])
        return error
