"""KMS through stock clients: boto3, the aws cli, and the AWS Encryption SDK's
multi-region-key-aware providers, plus a bad-input matrix sent raw."""

import base64
import json
import os
import urllib.error
import urllib.request

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import (
    DiscoveryFilter,
    MRKAwareDiscoveryAwsKmsMasterKeyProvider,
    MRKAwareStrictAwsKmsMasterKeyProvider,
)
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY

EAST, WEST = "us-east-1", "eu-west-1"
ACCOUNT = "000000000000"


def code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


@pytest.fixture
def east(tern):
    return tern.client("kms", EAST)


@pytest.fixture
def west(tern):
    return tern.client("kms", WEST)


def replicated_mrk(east) -> str:
    key_id = east.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    return key_id


def test_boto3_key_lifecycle(east):
    meta = east.create_key(Description="orders", Tags=[{"TagKey": "team", "TagValue": "storage"}])["KeyMetadata"]
    key = meta["KeyId"]
    assert meta["Arn"] == f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{key}"
    assert (meta["KeySpec"], meta["KeyUsage"], meta["KeyManager"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "CUSTOMER")
    east.create_alias(AliasName="alias/orders", TargetKeyId=key)
    assert east.describe_key(KeyId="alias/orders")["KeyMetadata"]["KeyId"] == key

    blob = east.encrypt(KeyId="alias/orders", Plaintext=b"order 42", EncryptionContext={"tenant": "a"})["CiphertextBlob"]
    other = east.create_key()["KeyMetadata"]["KeyId"]
    moved = east.re_encrypt(
        CiphertextBlob=blob, SourceEncryptionContext={"tenant": "a"}, DestinationKeyId=other,
        DestinationEncryptionContext={"tenant": "b"},
    )
    assert moved["SourceKeyId"].endswith(key) and moved["KeyId"].endswith(other)
    plain = east.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"tenant": "b"})
    assert plain["Plaintext"] == b"order 42"
    with pytest.raises(ClientError) as e:
        east.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"tenant": "b"}, KeyId=key)
    assert code(e.value) == "IncorrectKeyException"

    without = east.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_128")
    assert "Plaintext" not in without
    assert len(east.decrypt(CiphertextBlob=without["CiphertextBlob"])["Plaintext"]) == 16

    east.tag_resource(KeyId=key, Tags=[{"TagKey": "env", "TagValue": "test"}])
    east.untag_resource(KeyId=key, TagKeys=["team"])
    assert east.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "env", "TagValue": "test"}]
    grant = east.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/app", Operations=["Decrypt"])
    assert [g["GrantId"] for g in east.list_grants(KeyId=key)["Grants"]] == [grant["GrantId"]]
    east.retire_grant(GrantToken=grant["GrantToken"])
    assert east.list_grants(KeyId=key)["Grants"] == []

    page = east.list_keys(Limit=1)
    assert page["Truncated"] and len(page["Keys"]) == 1
    rest = east.list_keys(Marker=page["NextMarker"])["Keys"]
    assert page["Keys"][0] not in rest


def test_key_policies(east):
    key = east.create_key()["KeyMetadata"]["KeyId"]
    default = json.loads(east.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    assert default["Statement"][0]["Principal"]["AWS"] == f"arn:aws:iam::{ACCOUNT}:root"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
    ]})
    east.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
    assert east.get_key_policy(KeyId=key)["Policy"] == policy
    with pytest.raises(ClientError) as e:
        east.put_key_policy(KeyId=key, PolicyName="default", Policy='{"Statement": "nope"}')
    assert code(e.value) == "MalformedPolicyDocumentException"
    assert east.get_key_policy(KeyId=key)["Policy"] == policy, "a refused policy changes nothing"


def test_aws_cli_replicates_and_decrypts_in_the_other_region(tern, tmp_path):
    created = json.loads(tern.aws("kms", "create-key", "--multi-region", region=EAST).stdout)
    key = created["KeyMetadata"]["KeyId"]
    tern.aws("kms", "replicate-key", "--key-id", key, "--replica-region", WEST, region=EAST)
    (tmp_path / "plain").write_bytes(b"from the cli")
    blob = tern.aws("kms", "encrypt", "--key-id", key, "--plaintext", f"fileb://{tmp_path / 'plain'}",
                    "--query", "CiphertextBlob", "--output", "text", region=EAST).stdout.strip()
    (tmp_path / "blob").write_bytes(base64.b64decode(blob))
    out = json.loads(tern.aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob'}", region=WEST).stdout)
    assert base64.b64decode(out["Plaintext"]) == b"from the cli"
    assert out["KeyId"] == f"arn:aws:kms:{WEST}:{ACCOUNT}:key/{key}"


class TernBotocoreSession(botocore.session.Session):
    """A botocore session whose clients reach each region's own Tern endpoint:
    the Encryption SDK makes its KMS clients itself, one per region."""

    def __init__(self, tern):
        super().__init__()
        self.tern = tern
        self.set_credentials(ACCESS_KEY, SECRET_KEY)

    def create_client(self, service_name, region_name=None, *args, **kwargs):
        if kwargs.get("endpoint_url") is None:
            kwargs["endpoint_url"] = self.tern.endpoint(region_name)
        return super().create_client(service_name, region_name, *args, **kwargs)


def test_encryption_sdk_mrk_keyrings_across_regions(tern, east):
    key = replicated_mrk(east)
    session = TernBotocoreSession(tern)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    east_arn = f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{key}"
    west_arn = f"arn:aws:kms:{WEST}:{ACCOUNT}:key/{key}"
    writer = MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[east_arn], botocore_session=session)
    message, _ = client.encrypt(source=b"esdk across regions", key_provider=writer, encryption_context={"app": "t"})

    strict = MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[west_arn], botocore_session=session)
    plain, header = client.decrypt(source=message, key_provider=strict)
    assert plain == b"esdk across regions" and header.encryption_context["app"] == "t"

    discovery = MRKAwareDiscoveryAwsKmsMasterKeyProvider(
        discovery_region=WEST, discovery_filter=DiscoveryFilter(account_ids=[ACCOUNT], partition="aws"),
        botocore_session=session,
    )
    plain, _ = client.decrypt(source=message, key_provider=discovery)
    assert plain == b"esdk across regions"


def raw_kms(tern, region: str, target: str, body: bytes) -> tuple[int, dict]:
    """A correctly signed KMS request with any body, for input no SDK would send."""
    request = AWSRequest(method="POST", url=tern.endpoint(region) + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"TrentService.{target}",
    })
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kms", region).add_auth(request)
    req = urllib.request.Request(request.url, data=body, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(req) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_bad_input_gets_aws_errors_and_changes_nothing(tern, east):
    key = east.create_key()["KeyMetadata"]["KeyId"]
    blob = east.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"a": "b"})["CiphertextBlob"]
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    b64 = lambda b: base64.b64encode(bytes(b)).decode()  # noqa: E731
    before = east.list_keys(Limit=1000)["Keys"]
    cases = [
        ("CreateKey", b"{not json", "SerializationException"),
        ("Frobnicate", b"{}", "UnknownOperationException"),
        ("Decrypt", b'{"CiphertextBlob": "***"}', "SerializationException"),
        ("Decrypt", json.dumps({"CiphertextBlob": b64(tampered), "EncryptionContext": {"a": "b"}}).encode(),
         "InvalidCiphertextException"),
        ("Decrypt", json.dumps({"CiphertextBlob": b64(blob), "EncryptionContext": {"a": "c"}}).encode(),
         "InvalidCiphertextException"),
        ("Decrypt", json.dumps({"CiphertextBlob": b64(b"short")}).encode(), "InvalidCiphertextException"),
        ("Encrypt", json.dumps({"KeyId": key, "Plaintext": b64(b"y" * 4097)}).encode(), "ValidationException"),
        ("Encrypt", json.dumps({"KeyId": key, "Plaintext": b64(b"y"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"})
         .encode(), "InvalidKeyUsageException"),
        ("Encrypt", json.dumps({"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "Plaintext": b64(b"y")}).encode(),
         "NotFoundException"),
        ("Encrypt", json.dumps({"Plaintext": b64(b"y")}).encode(), "ValidationException"),
        ("GenerateDataKey", json.dumps({"KeyId": key, "NumberOfBytes": 32, "KeySpec": "AES_256"}).encode(),
         "ValidationException"),
        ("CreateKey", json.dumps({"Policy": "[1, 2]"}).encode(), "MalformedPolicyDocumentException"),
        ("CreateKey", json.dumps({"Tags": [{"TagKey": "aws:x", "TagValue": "y"}]}).encode(), "TagException"),
        ("CreateAlias", json.dumps({"AliasName": "alias/aws/mine", "TargetKeyId": key}).encode(),
         "InvalidAliasNameException"),
        ("CreateAlias", json.dumps({"AliasName": "my-key", "TargetKeyId": key}).encode(), "ValidationException"),
        ("DescribeKey", json.dumps({"KeyId": f"arn:aws:kms:{WEST}:{ACCOUNT}:key/{key}"}).encode(),
         "NotFoundException"),
    ]
    for target, body, expected in cases:
        status, answer = raw_kms(tern, EAST, target, body)
        assert (status, answer["__type"]) == (400, expected), (target, body, answer)
        assert "message" in answer
    assert east.list_keys(Limit=1000)["Keys"] == before, "refused requests create nothing"


def test_no_plaintext_data_key_or_secret_rests_on_disk_or_in_logs(tern, east):
    key = replicated_mrk(east)
    marker = os.urandom(24)
    east.encrypt(KeyId=key, Plaintext=marker)
    data_key = east.generate_data_key(KeyId=key, NumberOfBytes=64)["Plaintext"]
    iam = tern.client("iam")
    iam.create_user(UserName="scanned")
    secret = iam.create_access_key(UserName="scanned")["AccessKey"]["SecretAccessKey"].encode()
    tern.log.flush()
    needles = [marker, data_key, base64.b64encode(marker), base64.b64encode(data_key), secret]
    for path in [*tern.workdir.rglob("*")]:
        if path.is_file():
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, f"secret bytes found in {path}"
