"""boto3 against Tern: the calls users make every day."""

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY


def code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def test_upload_file_50_mib_is_multipart_and_exact(s3, bucket, tmp_path):
    source = tmp_path / "big.bin"
    data = os.urandom(50 * 1024 * 1024)
    source.write_bytes(data)
    s3.upload_file(str(source), bucket, "big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-7"), "boto3 uploads 8 MiB parts"
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(target))
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_metadata_and_ranges(s3, bucket):
    envelope = '{"purpose": "demo", "aws:x-amz-cek-alg": "115"}'
    s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789", Metadata={"x-amz-t": envelope}, ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Metadata"]["x-amz-t"] == envelope
    assert got["ContentType"] == "text/plain"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    part = s3.get_object(Bucket=bucket, Key="k", Range="bytes=2-4")
    assert part["Body"].read() == b"234"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", Range="bytes=20-30")
    assert code(err.value) == "InvalidRange"


def raw_put(url: str, body: bytes) -> int:
    """PUT without the Content-Type urllib would add (it is part of a SigV2 signature)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc)
    connection.request("PUT", f"{parts.path}?{parts.query}", body=body)
    return connection.getresponse().status


@pytest.mark.parametrize("signature_version", [None, "s3v4"])
def test_presigned_urls(tern, bucket, signature_version):
    s3 = tern.client(signature_version=signature_version) if signature_version else tern.client()
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert raw_put(put_url, b"via presigned url") == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    with urllib.request.urlopen(get_url) as response:
        assert response.read() == b"via presigned url"
    tampered = get_url.replace("Key=p", "Key=q") if "Key=p" in get_url else get_url.replace("/p?", "/q?")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(tampered)
    assert err.value.code == 403


def test_versioning(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(err.value) == "NoSuchKey"
    listing = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listing["Versions"]] == [v2, v1]
    assert listing["DeleteMarkers"][0]["IsLatest"] is True
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"1"


def test_listing_pagination(s3, bucket):
    keys = [f"dir{d}/file{i:02}" for d in range(3) for i in range(12)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    paginator = s3.get_paginator("list_objects_v2")
    listed = [o["Key"] for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 5}) for o in page.get("Contents", [])]
    assert listed == sorted(keys)
    prefixes = [p["Prefix"] for page in paginator.paginate(Bucket=bucket, Delimiter="/") for p in page.get("CommonPrefixes", [])]
    assert prefixes == ["dir0/", "dir1/", "dir2/"]


def test_batch_delete_and_copy(s3, bucket):
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.copy_object(Bucket=bucket, Key="a-copy", CopySource={"Bucket": bucket, "Key": "a"})
    assert s3.get_object(Bucket=bucket, Key="a-copy")["Body"].read() == b"a"
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ("a", "b", "c", "a-copy")]})
    assert len(result["Deleted"]) == 4
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_bucket_in_other_region_redirects(tern, bucket):
    west = tern.client(region="eu-west-1")
    west.create_bucket(Bucket=bucket + "-w", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    east = tern.client()
    with pytest.raises(ClientError) as err:
        east.create_bucket(Bucket=bucket + "-w")
    assert code(err.value) == "BucketAlreadyOwnedByYou"
    names = {b["Name"]: b.get("BucketRegion") for b in east.list_buckets()["Buckets"]}
    assert names[bucket + "-w"] == "eu-west-1"


@pytest.mark.parametrize(
    "service, call, bad_signature_code",
    [
        ("kms", lambda c: c.list_keys(), "InvalidSignatureException"),
        ("iam", lambda c: c.list_users(), "SignatureDoesNotMatch"),
        ("sts", lambda c: c.get_caller_identity(), "SignatureDoesNotMatch"),
    ],
)
def test_other_services_authenticate_before_anything_else(tern, service, call, bad_signature_code):
    """KMS, IAM and STS answer signed requests and refuse forged ones in their own error shape."""
    call(tern.client(service))
    forged = boto3.client(
        service,
        endpoint_url=tern.endpoint(),
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError) as err:
        call(forged)
    assert code(err.value) == bad_signature_code
