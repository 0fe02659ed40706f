"""Cross-region replication driven by boto3: configuration, the three
encryption models' server-side paths, and what a failure looks like."""

import json
import time

import pytest
from botocore.exceptions import ClientError

EAST, WEST = "us-east-1", "eu-west-1"
ACCOUNT = "000000000000"
_names = iter(range(1_000_000))


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**8}-{next(_names)}"


def versioned(s3, name: str, region: str) -> None:
    if region == EAST:
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def role(tern, actions: list[str]) -> str:
    iam = tern.client("iam")
    name = unique("crr")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="crr", PolicyDocument=json.dumps(allow))
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def settle(s3, bucket: str, key: str, **extra) -> str:
    for _ in range(400):
        status = s3.head_object(Bucket=bucket, Key=key, **extra).get("ReplicationStatus")
        if status != "PENDING":
            return status
        time.sleep(0.025)
    return "PENDING"


@pytest.fixture
def pair(tern):
    east, west = tern.client("s3", EAST), tern.client("s3", WEST)
    src, dst = unique("src"), unique("dst")
    versioned(east, src, EAST)
    versioned(west, dst, WEST)
    return east, west, src, dst


def rule(dst: str, **extra) -> dict:
    return {"ID": "r", "Priority": 1, "Status": "Enabled", "Filter": {},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": f"arn:aws:s3:::{dst}", **extra.pop("destination", {})}, **extra}


def test_regional_and_multi_region_sse_kms_replicate(tern, pair):
    east, west, src, dst = pair
    kms_east, kms_west = tern.client("kms", EAST), tern.client("kms", WEST)
    regional = kms_east.create_key()["KeyMetadata"]["Arn"]
    replica_regional = kms_west.create_key()["KeyMetadata"]["Arn"]
    mrk = kms_east.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms_east.replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    arn = role(tern, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject", "kms:Decrypt", "kms:GenerateDataKey"])
    sse = {"SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}}}
    for source_key, replica_key in [(regional, replica_regional),
                                    (f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{mrk}", f"arn:aws:kms:{WEST}:{ACCOUNT}:key/{mrk}")]:
        config = {"Role": arn, "Rules": [rule(dst, **sse, destination={
            "EncryptionConfiguration": {"ReplicaKmsKeyID": replica_key}})]}
        east.put_bucket_replication(Bucket=src, ReplicationConfiguration=config)
        assert east.get_bucket_replication(Bucket=src)["ReplicationConfiguration"]["Rules"][0]["Destination"][
            "EncryptionConfiguration"]["ReplicaKmsKeyID"] == replica_key
        key = unique("obj")
        east.put_object(Bucket=src, Key=key, Body=b"secret" * 10_000, ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=source_key, Metadata={"model": "kms"})
        assert settle(east, src, key) == "COMPLETED"
        replica = west.get_object(Bucket=dst, Key=key)
        assert replica["SSEKMSKeyId"] == replica_key
        assert replica["ReplicationStatus"] == "REPLICA"
        assert replica["Metadata"] == {"model": "kms"}
        assert replica["Body"].read() == b"secret" * 10_000


def test_a_failure_names_the_aws_reason_and_the_config_errors_are_aws_codes(tern, pair):
    east, west, src, dst = pair
    arn = role(tern, ["s3:GetObjectVersionForReplication"])
    with pytest.raises(ClientError) as e:
        east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule("no-such-bucket-x")]})
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule(dst)]})
    east.put_object(Bucket=src, Key="k", Body=b"x")
    assert settle(east, src, "k") == "FAILED"
    report = json.loads(tern.cli_replication("status", "--bucket", src, "--json"))
    assert report["failed"][0]["reason"] == "DstPutObjectNotPermitted"
    with pytest.raises(ClientError):
        west.head_object(Bucket=dst, Key="k")
