"""Starts a real two-region `tern up` for the interop suite."""

import os
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "AKIAINTEROP000000000"
SECRET_KEY = "interop-secret-key-000000000000000000000"
REGIONS = ("us-east-1", "eu-west-1")


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: every socket stays bound until all are
    chosen, or the kernel may hand the same port out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Tern:
    def __init__(self, binary: Path, workdir: Path, tls: bool = False):
        self.binary = binary
        self.workdir = workdir
        self.tls = tls
        self.ports = dict(zip(REGIONS, free_ports(len(REGIONS))))
        config = f'data_dir = "{workdir / "data"}"\n'
        for region, port in self.ports.items():
            config += f'[[region]]\nname = "{region}"\nlisten = "127.0.0.1:{port}"\n'
        (workdir / "tern.toml").write_text(config)
        env = dict(os.environ, TERN_ROOT_ACCESS_KEY_ID=ACCESS_KEY, TERN_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
        self.log = open(workdir / "tern.log", "wb")
        # stdin is a pipe: tern exits by itself if this process dies.
        self.process = subprocess.Popen(
            [str(binary), "--exit-on-stdin-close", "up", "--config", str(workdir / "tern.toml")]
            + (["--tls"] if tls else []),
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        for region in REGIONS:
            self._wait_healthy(region)

    def endpoint(self, region: str = "us-east-1") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.ports[region]}"

    @property
    def ca(self) -> Path:
        """The CA `tern up --tls` made, which clients trust through AWS_CA_BUNDLE."""
        return self.workdir / "data" / "tls" / "ca.pem"

    def env(self, **extra: str) -> dict:
        """The environment of a client process: with TLS, AWS_CA_BUNDLE."""
        env = dict(os.environ, **extra)
        if self.tls:
            env["AWS_CA_BUNDLE"] = str(self.ca)
        return env

    def _wait_healthy(self, region: str) -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                context = ssl.create_default_context(cafile=str(self.ca)) if self.tls else None
                with urllib.request.urlopen(self.endpoint(region) + "/_tern/health", context=context) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError((self.workdir / "tern.log").read_text())

    def client(self, service: str = "s3", region: str = "us-east-1", **config):
        return boto3.client(
            service,
            endpoint_url=self.endpoint(region),
            region_name=region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(**config),
            verify=str(self.ca) if self.tls else None,
        )

    def aws(self, *args: str, region: str = "us-east-1", check: bool = True,
            trust_ca: bool = True) -> subprocess.CompletedProcess:
        """Runs the aws cli against one region, as a user would (with TLS,
        trusting the deployment's CA unless `trust_ca` is false)."""
        env = self.env(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=region,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        if not trust_ca:
            env.pop("AWS_CA_BUNDLE", None)
        aws = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "aws"
        return subprocess.run(
            [str(aws), "--endpoint-url", self.endpoint(region), *args],
            env=env, capture_output=True, text=True, check=check, timeout=300,
        )

    def cli_replication(self, *args: str, region: str = "us-east-1") -> str:
        """Runs `tern replication …` against one region, as an operator would."""
        env = self.env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=region)
        out = subprocess.run(
            [str(self.binary), "replication", *args, "--endpoint", self.endpoint(region)],
            env=env, capture_output=True, text=True, check=True, timeout=60,
        )
        return out.stdout

    def cse(self, *args: str, region: str = "us-east-1", check: bool = True,
            stdin: bytes | None = None, binary_stdout: bool = False) -> subprocess.CompletedProcess:
        """Runs `tern cse …` against one region, configured as the aws cli would be."""
        env = self.env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=region)
        done = subprocess.run(
            [str(self.binary), "cse", *args, "--endpoint-url", self.endpoint(region)],
            env=env, capture_output=True, input=stdin, check=check, timeout=300,
        )
        done.stderr = done.stderr.decode()
        if not binary_stdout:
            done.stdout = done.stdout.decode()
        return done

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=40)
        self.log.close()


def _binary() -> Path:
    return Path(os.environ.get("TERN_BIN", ROOT / "target" / "debug" / "tern"))


@pytest.fixture(scope="session")
def tern():
    with tempfile.TemporaryDirectory() as workdir:
        server = Tern(_binary(), Path(workdir))
        yield server
        server.stop()


@pytest.fixture(scope="session")
def tern_tls():
    """`tern up --tls`: HTTPS only, regions over mutual TLS."""
    with tempfile.TemporaryDirectory() as workdir:
        server = Tern(_binary(), Path(workdir), tls=True)
        yield server
        server.stop()


@pytest.fixture
def s3(tern):
    return tern.client()


_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(s3):
    name = f"interop-{os.getpid()}-{next(_counter)}"
    s3.create_bucket(Bucket=name)
    return name
