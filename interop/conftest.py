"""Starts a real two-region `tern up` for the interop suite."""

import os
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tern:
    def __init__(self, binary: Path, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.ports = {region: free_port() for region in REGIONS}
        config = f'data_dir = "{workdir / "data"}"\n'
        for region, port in self.ports.items():
            config += f'[[region]]\nname = "{region}"\nlisten = "127.0.0.1:{port}"\n'
        (workdir / "tern.toml").write_text(config)
        env = dict(os.environ, TERN_ROOT_ACCESS_KEY_ID=ACCESS_KEY, TERN_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
        self.log = open(workdir / "tern.log", "wb")
        # stdin is a pipe: tern exits by itself if this process dies.
        self.process = subprocess.Popen(
            [str(binary), "--exit-on-stdin-close", "up", "--config", str(workdir / "tern.toml")],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        for region in REGIONS:
            self._wait_healthy(region)

    def endpoint(self, region: str = "us-east-1") -> str:
        return f"http://127.0.0.1:{self.ports[region]}"

    def _wait_healthy(self, region: str) -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.endpoint(region) + "/_tern/health") as r:
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
        )

    def aws(self, *args: str, region: str = "us-east-1", check: bool = True) -> subprocess.CompletedProcess:
        """Runs the aws cli against one region, as a user would."""
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=region,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        aws = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "aws"
        return subprocess.run(
            [str(aws), "--endpoint-url", self.endpoint(region), *args],
            env=env, capture_output=True, text=True, check=check, timeout=300,
        )

    def cli_replication(self, *args: str, region: str = "us-east-1") -> str:
        """Runs `tern replication …` against one region, as an operator would."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=region)
        out = subprocess.run(
            [str(self.binary), "replication", *args, "--endpoint", self.endpoint(region)],
            env=env, capture_output=True, text=True, check=True, timeout=60,
        )
        return out.stdout

    def cse(self, *args: str, region: str = "us-east-1", check: bool = True,
            stdin: bytes | None = None, binary_stdout: bool = False) -> subprocess.CompletedProcess:
        """Runs `tern cse …` against one region, configured as the aws cli would be."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=region)
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


@pytest.fixture(scope="session")
def tern():
    binary = Path(os.environ.get("TERN_BIN", ROOT / "target" / "debug" / "tern"))
    with tempfile.TemporaryDirectory() as workdir:
        server = Tern(binary, Path(workdir))
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
