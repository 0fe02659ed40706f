"""`tern cse` and the official S3 Encryption Client (Python 4.0.0) reading
each other's objects through Tern's own S3 and KMS, in every format the
issue names, and refusing tampered ones."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
from s3_encryption.materials.kms_keyring import KmsKeyring
from s3_encryption.materials.materials import AlgorithmSuite, CommitmentPolicy

ROOT = Path(__file__).resolve().parent.parent
EAST = "us-east-1"


def python_client(tern, key_id: str, **config):
    """The official client on fresh boto3 clients (it attaches to the one it wraps)."""
    keyring = KmsKeyring(kms_client=tern.client("kms", EAST), kms_key_id=key_id)
    return S3EncryptionClient(wrapped_s3_client=tern.client("s3", EAST),
                              config=S3EncryptionClientConfig(keyring=keyring, **config))


@pytest.fixture
def key(tern):
    return tern.client("kms", EAST).create_key()["KeyMetadata"]["Arn"]


def test_python_v3_reads_in_tern_and_tern_v3_reads_in_python(tern, bucket, key, tmp_path):
    python = python_client(tern, key)
    python.put_object(Bucket=bucket, Key="from-python", Body=b"written by python", EncryptionContext={"a": "1"})
    out = tmp_path / "out"
    tern.cse("get", f"s3://{bucket}/from-python", str(out), "--context", "a=1")
    assert out.read_bytes() == b"written by python"

    src = tmp_path / "src"
    src.write_bytes(b"written by tern")
    tern.cse("put", str(src), f"s3://{bucket}/from-tern", "--kms-key-id", key, "--context", "a=1", "--context", "b=2")
    got = python.get_object(Bucket=bucket, Key="from-tern", EncryptionContext={"a": "1", "b": "2"})
    assert got["Body"].read() == b"written by tern"
    meta = tern.client("s3", EAST).head_object(Bucket=bucket, Key="from-tern")["Metadata"]
    assert meta["x-amz-c"] == "115" and meta["x-amz-w"] == "12"
    assert meta["x-amz-t"] == '{"a": "1", "b": "2", "aws:x-amz-cek-alg": "115"}', "as Python's json.dumps writes it"


def test_legacy_v2_both_ways_only_when_the_policy_allows(tern, bucket, key, tmp_path):
    legacy = dict(encryption_algorithm=AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF,
                  commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    python_client(tern, key, **legacy).put_object(Bucket=bucket, Key="v2", Body=b"old format")
    out = tmp_path / "out"
    refused = tern.cse("get", f"s3://{bucket}/v2", str(out), check=False)
    assert refused.returncode != 0 and "REQUIRE_ENCRYPT_REQUIRE_DECRYPT" in refused.stderr
    assert not out.exists()
    tern.cse("get", f"s3://{bucket}/v2", str(out), "--commitment-policy", "require-encrypt-allow-decrypt")
    assert out.read_bytes() == b"old format"

    src = tmp_path / "src"
    src.write_bytes(b"tern writes v2")
    tern.cse("put", str(src), f"s3://{bucket}/v2-tern", "--kms-key-id", key, "--format", "v2")
    reader = python_client(tern, key, commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    assert reader.get_object(Bucket=bucket, Key="v2-tern")["Body"].read() == b"tern writes v2"


def test_instruction_files_written_by_tern_read_in_python(tern, bucket, key, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"envelope in a file")
    tern.cse("put", str(src), f"s3://{bucket}/doc", "--kms-key-id", key, "--instruction-file")
    s3 = tern.client("s3", EAST)
    assert "x-amz-3" not in s3.head_object(Bucket=bucket, Key="doc")["Metadata"]
    assert "x-amz-3" in json.loads(s3.get_object(Bucket=bucket, Key="doc.instruction")["Body"].read())
    assert python_client(tern, key).get_object(Bucket=bucket, Key="doc")["Body"].read() == b"envelope in a file"
    inspected = json.loads(tern.cse("inspect", f"s3://{bucket}/doc", "--json").stdout)
    assert inspected["instruction_file"] is True and inspected["format"] == "V3"


def test_multipart_100_mib_both_ways(tern, bucket, key, tmp_path):
    plaintext = os.urandom(100 * 1024 * 1024)
    python_client(tern, key).upload_fileobj(io.BytesIO(plaintext), bucket, "py-big")
    out = tmp_path / "out"
    tern.cse("get", f"s3://{bucket}/py-big", str(out))
    assert out.read_bytes() == plaintext
    out.unlink()

    src = tmp_path / "src"
    src.write_bytes(plaintext)
    tern.cse("put", str(src), f"s3://{bucket}/tern-big", "--kms-key-id", key)
    assert python_client(tern, key).get_object(Bucket=bucket, Key="tern-big")["Body"].read() == plaintext


def stdout_of(tern, *args: str) -> subprocess.CompletedProcess:
    """`tern cse …` with its standard output as bytes."""
    return tern.cse(*args, check=False, binary_stdout=True)


def test_pipes_in_and_out(tern, bucket, key):
    piped = os.urandom(20 * 1024 * 1024)  # past the multipart threshold, with no length given
    tern.cse("put", "-", f"s3://{bucket}/piped", "--kms-key-id", key, stdin=piped)
    assert python_client(tern, key).get_object(Bucket=bucket, Key="piped")["Body"].read() == piped
    assert stdout_of(tern, "get", f"s3://{bucket}/piped", "-").stdout == piped
    streamed = stdout_of(tern, "get", f"s3://{bucket}/piped", "-", "--delayed-authentication")
    assert streamed.returncode == 0 and streamed.stdout == piped

    s3 = tern.client("s3", EAST)
    stored = s3.get_object(Bucket=bucket, Key="piped")
    body = bytearray(stored["Body"].read())
    body[-1] ^= 1
    s3.put_object(Bucket=bucket, Key="piped", Body=bytes(body), Metadata=stored["Metadata"])
    refused = stdout_of(tern, "get", f"s3://{bucket}/piped", "-")
    assert refused.returncode == 1 and refused.stdout == b"", "nothing unauthenticated reaches the pipe"
    delayed = stdout_of(tern, "get", f"s3://{bucket}/piped", "-", "--delayed-authentication")
    assert delayed.returncode == 1 and "unauthenticated: discard it" in delayed.stderr


def test_a_tampered_object_fails_in_tern_with_nothing_written(tern, bucket, key, tmp_path):
    python_client(tern, key).put_object(Bucket=bucket, Key="t", Body=b"secret" * 1000)
    s3 = tern.client("s3", EAST)
    stored = s3.get_object(Bucket=bucket, Key="t")
    body = bytearray(stored["Body"].read())
    body[100] ^= 1
    s3.put_object(Bucket=bucket, Key="t", Body=bytes(body), Metadata=stored["Metadata"])
    out = tmp_path / "out"
    failed = tern.cse("get", f"s3://{bucket}/t", str(out), check=False)
    assert failed.returncode == 1 and "failed authentication" in failed.stderr, failed.stderr
    assert list(tmp_path.iterdir()) == [], "no plaintext, not even a temporary file"


def test_the_committed_known_answer_vectors_are_what_the_python_client_writes():
    generator = ROOT / "crates" / "tern-cse" / "tests" / "kat" / "generate.py"
    fresh = subprocess.run([sys.executable, str(generator)], capture_output=True, text=True, check=True).stdout
    committed = (generator.parent / "vectors.json").read_text()
    assert json.loads(fresh) == json.loads(committed)


def test_cli_errors_say_what_is_wrong_and_write_nothing(tern, bucket, key, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"context matters")
    tern.cse("put", str(src), f"s3://{bucket}/ctx", "--kms-key-id", key, "--context", "team=a")
    out = tmp_path / "out"
    wrong = tern.cse("get", f"s3://{bucket}/ctx", str(out), "--context", "team=b", check=False)
    assert wrong.returncode == 1 and "encryption context does not match" in wrong.stderr, wrong.stderr
    redirected = tern.cse("get", f"s3://{bucket}/ctx", str(out), region="eu-west-1", check=False)
    assert f"bucket {bucket} is in region us-east-1" in redirected.stderr, redirected.stderr

    # The same object carried to a bucket in eu-west-1, where its (single-region) key does not exist.
    west = tern.client("s3", "eu-west-1")
    west_bucket = f"{bucket}-west"
    west.create_bucket(Bucket=west_bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    stored = tern.client("s3", EAST).get_object(Bucket=bucket, Key="ctx")
    west.put_object(Bucket=west_bucket, Key="ctx", Body=stored["Body"].read(), Metadata=stored["Metadata"])
    elsewhere = tern.cse("get", f"s3://{west_bucket}/ctx", str(out), "--context", "team=a", "--kms-key-id", key,
                         region="eu-west-1", check=False)
    assert elsewhere.returncode == 1 and "does not exist in eu-west-1" in elsewhere.stderr, elsewhere.stderr
    missing = tern.cse("get", f"s3://{bucket}/nope", str(out), check=False)
    assert missing.returncode == 1 and f"s3://{bucket}/nope does not exist" in missing.stderr, missing.stderr
    assert list(tmp_path.iterdir()) == [src]
