"""Cross-region replication driven by boto3: configuration, the three
encryption models' server-side paths, and what a failure looks like."""

import io
import json
import os
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


def test_replicas_take_the_rules_storage_class(tern, pair):
    east, west, src, dst = pair
    arn = role(tern, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject"])
    with pytest.raises(ClientError) as e:
        east.put_bucket_replication(Bucket=src, ReplicationConfiguration={
            "Role": arn, "Rules": [rule(dst, destination={"StorageClass": "DEEP_ARCHIVE"})]})
    assert e.value.response["Error"]["Code"] == "InvalidStorageClass"
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={
        "Role": arn, "Rules": [rule(dst, destination={"StorageClass": "STANDARD_IA"})]})
    assert east.get_bucket_replication(Bucket=src)["ReplicationConfiguration"]["Rules"][0]["Destination"]["StorageClass"] == "STANDARD_IA"
    east.put_object(Bucket=src, Key="k", Body=b"x", StorageClass="ONEZONE_IA")
    assert settle(east, src, "k") == "COMPLETED"
    assert east.head_object(Bucket=src, Key="k")["StorageClass"] == "ONEZONE_IA"
    assert west.head_object(Bucket=dst, Key="k")["StorageClass"] == "STANDARD_IA"
    assert west.list_objects_v2(Bucket=dst)["Contents"][0]["StorageClass"] == "STANDARD_IA"


def test_a_failure_names_the_aws_reason_and_the_config_errors_are_aws_codes(tern, pair):
    east, west, src, dst = pair
    arn = role(tern, ["s3:GetObjectVersionForReplication"])
    with pytest.raises(ClientError) as e:
        east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule("no-such-bucket-x")]})
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule(dst)]})
    with pytest.raises(ClientError) as e:
        east.put_bucket_versioning(Bucket=src, VersioningConfiguration={"Status": "Suspended"})
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidBucketState", 409)
    assert east.get_bucket_versioning(Bucket=src)["Status"] == "Enabled"
    east.put_object(Bucket=src, Key="k", Body=b"x")
    assert settle(east, src, "k") == "FAILED"
    report = json.loads(tern.cli_replication("status", "--bucket", src, "--json"))
    assert report["failed"][0]["reason"] == "DstPutObjectNotPermitted"
    with pytest.raises(ClientError):
        west.head_object(Bucket=dst, Key="k")


KMS_ROLE = ["s3:GetObjectVersionForReplication", "s3:ReplicateObject", "kms:Decrypt", "kms:GenerateDataKey"]


def kms_rule(dst: str, replica_key: str) -> dict:
    return rule(dst, SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                destination={"EncryptionConfiguration": {"ReplicaKmsKeyID": replica_key}})


def failure_reason(tern, src: str) -> str:
    report = json.loads(tern.cli_replication("status", "--bucket", src, "--json"))
    return report["failed"][0]["reason"]


def test_a_destination_key_whose_policy_lacks_the_role_fails_as_dst_put_object_not_permitted(tern, pair):
    east, west, src, dst = pair
    admin = unique("key-admin")
    tern.client("iam").create_user(UserName=admin)
    only_admin = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{admin}"},
        "Action": "kms:*", "Resource": "*"}]}
    replica_key = tern.client("kms", WEST).create_key(
        Policy=json.dumps(only_admin), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["Arn"]
    source_key = tern.client("kms", EAST).create_key()["KeyMetadata"]["Arn"]
    config = {"Role": role(tern, KMS_ROLE), "Rules": [kms_rule(dst, replica_key)]}
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration=config)
    east.put_object(Bucket=src, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=source_key)
    assert settle(east, src, "k") == "FAILED"
    assert failure_reason(tern, src) == "DstPutObjectNotPermitted"


def test_a_disabled_source_key_fails_as_src_kms_key_invalid_state(tern, pair):
    east, west, src, dst = pair
    kms_east = tern.client("kms", EAST)
    source_key = kms_east.create_key()["KeyMetadata"]["Arn"]
    replica_key = tern.client("kms", WEST).create_key()["KeyMetadata"]["Arn"]
    east.put_object(Bucket=src, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=source_key)
    kms_east.disable_key(KeyId=source_key)
    backfill = kms_rule(dst, replica_key) | {"ExistingObjectReplication": {"Status": "Enabled"}}
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": role(tern, KMS_ROLE), "Rules": [backfill]})
    assert settle(east, src, "k") == "FAILED"
    assert failure_reason(tern, src) == "SrcKmsKeyInvalidState"


def test_a_destination_key_pending_deletion_fails_as_dst_kms_key_invalid_state(tern, pair):
    east, west, src, dst = pair
    source_key = tern.client("kms", EAST).create_key()["KeyMetadata"]["Arn"]
    kms_west = tern.client("kms", WEST)
    replica_key = kms_west.create_key()["KeyMetadata"]["Arn"]
    config = {"Role": role(tern, KMS_ROLE), "Rules": [kms_rule(dst, replica_key)]}
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration=config)
    kms_west.schedule_key_deletion(KeyId=replica_key, PendingWindowInDays=7)
    east.put_object(Bucket=src, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=source_key)
    assert settle(east, src, "k") == "FAILED"
    assert failure_reason(tern, src) == "DstKmsKeyInvalidState"


def test_a_destination_with_versioning_suspended_fails_as_dst_bucket_unversioned(tern, pair):
    east, west, src, dst = pair
    config = {"Role": role(tern, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject"]), "Rules": [rule(dst)]}
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration=config)
    west.put_bucket_versioning(Bucket=dst, VersioningConfiguration={"Status": "Suspended"})
    east.put_object(Bucket=src, Key="k", Body=b"x")
    assert settle(east, src, "k") == "FAILED"
    assert failure_reason(tern, src) == "DstBucketUnversioned"
    with pytest.raises(ClientError):
        west.head_object(Bucket=dst, Key="k")


def test_tag_changes_replicate_and_replica_modifications_sync_back(tern, pair):
    east, west, src, dst = pair
    arn = role(tern, ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionTagging", "s3:ReplicateObject",
                      "s3:ReplicateTags"])
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule(dst)]})
    back = rule(src, SourceSelectionCriteria={"ReplicaModifications": {"Status": "Enabled"}})
    west.put_bucket_replication(Bucket=dst, ReplicationConfiguration={"Role": arn, "Rules": [back]})
    stored = west.get_bucket_replication(Bucket=dst)["ReplicationConfiguration"]["Rules"][0]
    assert stored["SourceSelectionCriteria"] == {"ReplicaModifications": {"Status": "Enabled"}}

    east.put_object(Bucket=src, Key="doc", Body=b"x", Tagging="stage=draft")
    assert settle(east, src, "doc") == "COMPLETED"
    east.put_object_tagging(Bucket=src, Key="doc", Tagging={"TagSet": [{"Key": "stage", "Value": "final"}]})
    final = [{"Key": "stage", "Value": "final"}]
    assert until(final, lambda: west.get_object_tagging(Bucket=dst, Key="doc")["TagSet"]) == final
    west.put_object_tagging(Bucket=dst, Key="doc", Tagging={"TagSet": [{"Key": "stage", "Value": "west"}]})
    edited = [{"Key": "stage", "Value": "west"}]
    assert until(edited, lambda: east.get_object_tagging(Bucket=src, Key="doc")["TagSet"]) == edited


def until(expected, read, rounds: int = 200):
    """Polls `read` until it returns `expected`; the last value read."""
    seen = read()
    for _ in range(rounds):
        if seen == expected:
            break
        time.sleep(0.025)
        seen = read()
    return seen


def encryption_client(tern, region: str, key_id: str):
    """The official S3 Encryption Client for `region`, on fresh boto3
    clients (it attaches itself to the client it wraps)."""
    from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
    from s3_encryption.materials.kms_keyring import KmsKeyring

    keyring = KmsKeyring(kms_client=tern.client("kms", region), kms_key_id=key_id)
    return S3EncryptionClient(wrapped_s3_client=tern.client("s3", region),
                              config=S3EncryptionClientConfig(keyring=keyring))


def test_cse_objects_under_an_mrk_replicate_verbatim_and_decrypt_with_the_other_regions_replica(tern, pair):
    east, west, src, dst = pair
    mrk = tern.client("kms", EAST).create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    tern.client("kms", EAST).replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    arn = role(tern, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject"])
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule(dst)]})

    secret = b"model one: the server never sees this " * 1000
    large = os.urandom(12 * 1024 * 1024)  # above the client's 8 MiB threshold: one GCM stream across parts
    writer = encryption_client(tern, EAST, f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{mrk}")
    writer.put_object(Bucket=src, Key="small", Body=secret, EncryptionContext={"purpose": "crr"})
    writer.upload_fileobj(io.BytesIO(large), src, "large")
    for key in ("small", "large"):
        assert settle(east, src, key) == "COMPLETED"
        stored, replica = east.get_object(Bucket=src, Key=key), west.get_object(Bucket=dst, Key=key)
        assert replica["Metadata"] == stored["Metadata"], "the envelope travels byte for byte"
        assert replica["Metadata"]["x-amz-c"] == "115"
        assert replica["Body"].read() == stored["Body"].read(), "and so does the ciphertext"

    reader = encryption_client(tern, WEST, f"arn:aws:kms:{WEST}:{ACCOUNT}:key/{mrk}")
    got = reader.get_object(Bucket=dst, Key="small", EncryptionContext={"purpose": "crr"})
    assert got["Body"].read() == secret
    assert reader.get_object(Bucket=dst, Key="large")["Body"].read() == large

    # tern cse reads the replica too: named by the us-east-1 ARN (used through
    # the eu-west-1 replica), or found by KMS in eu-west-1.
    out = tern.workdir / "replica.out"
    east_arn = f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{mrk}"
    tern.cse("get", f"s3://{dst}/small", str(out), "--context", "purpose=crr", "--kms-key-id", east_arn, region=WEST)
    assert out.read_bytes() == secret
    tern.cse("get", f"s3://{dst}/large", str(out), region=WEST)
    assert out.read_bytes() == large

    # And the other way: tern cse writes in us-east-1, Python reads the replica in eu-west-1.
    out.write_bytes(secret)
    tern.cse("put", str(out), f"s3://{src}/by-tern", "--kms-key-id", east_arn, "--context", "purpose=crr")
    out.unlink()
    assert settle(east, src, "by-tern") == "COMPLETED"
    got = reader.get_object(Bucket=dst, Key="by-tern", EncryptionContext={"purpose": "crr"})
    assert got["Body"].read() == secret
    for path in (tern.workdir / "data").rglob("*"):
        if path.is_file():
            assert secret[:64] not in path.read_bytes(), f"plaintext on disk in {path}"


def test_check_warns_of_objects_a_working_rule_skips_or_cannot_make_readable(tern, pair):
    east, west, src, dst = pair
    kms_east = tern.client("kms", EAST)
    regional = kms_east.create_key()["KeyMetadata"]["Arn"]
    lonely_mrk = kms_east.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]  # no replica in eu-west-1
    arn = role(tern, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject", "kms:Decrypt", "kms:GenerateDataKey"])
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule(dst)]})
    check = json.loads(tern.cli_replication("check", "--bucket", src, "--json"))["rules"][0]
    assert check["ok"] and check["warnings"] == [], "nothing to skip yet"

    kms_default = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": regional}}]}
    east.put_bucket_encryption(Bucket=src, ServerSideEncryptionConfiguration=kms_default)
    east.put_object(Bucket=src, Key="by-default", Body=b"x")
    assert "ReplicationStatus" not in east.head_object(Bucket=src, Key="by-default"), "skipped, as AWS skips it"
    out = tern.workdir / "envelope.in"
    out.write_bytes(b"model one")
    tern.cse("put", str(out), f"s3://{src}/envelope", "--kms-key-id", lonely_mrk)
    west.put_bucket_encryption(Bucket=dst, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})

    text = tern.cli_replication("check", "--bucket", src)  # exit 0: the rule works
    assert f"rule r -> {dst}: ok, 4 warning(s)" in text, text
    assert f"encrypts new objects with SSE-KMS under {regional} by default, but the rule does not select" in text
    assert "2 current object(s) under '' are SSE-KMS and will not replicate" in text
    assert f"multi-Region key {lonely_mrk}, which has no replica in {WEST}" in text
    assert f"{dst} encrypts new objects with SSE-KMS under aws/s3 by default, but replicas keep" in text

    # Fixed as the warnings say, only the note on the destination's default remains.
    kms_east.replicate_key(KeyId=lonely_mrk, ReplicaRegion=WEST)
    replica_key = tern.client("kms", WEST).create_key()["KeyMetadata"]["Arn"]
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule(
        dst, SourceSelectionCriteria={"SseKmsEncryptedObjects": {"Status": "Enabled"}},
        destination={"EncryptionConfiguration": {"ReplicaKmsKeyID": replica_key}})]})
    check = json.loads(tern.cli_replication("check", "--bucket", src, "--json"))["rules"][0]
    assert [w.split(" by default")[0] for w in check["warnings"]] == [f"{dst} encrypts new objects with SSE-KMS under aws/s3"]
    assert f"SSE-KMS objects are encrypted under ReplicaKmsKeyID {replica_key}" in check["warnings"][0]


def test_an_sse_s3_replica_stays_sse_s3_whatever_the_destinations_default(tern, pair):
    east, west, src, dst = pair
    west.put_bucket_encryption(Bucket=dst, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    arn = role(tern, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject"])
    east.put_bucket_replication(Bucket=src, ReplicationConfiguration={"Role": arn, "Rules": [rule(dst)]})
    etag = east.put_object(Bucket=src, Key="k", Body=b"plain enough")["ETag"]
    assert settle(east, src, "k") == "COMPLETED"
    replica = west.head_object(Bucket=dst, Key="k")
    assert replica["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in replica
    assert replica["ETag"] == etag
