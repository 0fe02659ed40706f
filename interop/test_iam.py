"""IAM, STS and authorization through stock clients: global IAM across both
regions, role sessions, and who may use which KMS key where."""

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

EAST, WEST = "us-east-1", "eu-west-1"
ACCOUNT = "000000000000"
_names = iter(range(1_000_000))


def code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**9}-{next(_names)}"


def client_for(tern, service, region, creds):
    return boto3.client(
        service, endpoint_url=tern.endpoint(region), region_name=region,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"), config=Config(retries={"max_attempts": 1}),
    )


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def new_user(iam, name=None, *statements):
    name = name or unique("user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    return name, iam.create_access_key(UserName=name)["AccessKey"]


def eventually(check, seconds=1.0):
    """Retries `check` until it passes or `seconds` pass (IAM's propagation bound)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except (ClientError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_iam_is_global_within_a_second(tern):
    west_iam = tern.client("iam", WEST)
    east_iam = tern.client("iam", EAST)
    name, key = new_user(west_iam)
    assert east_iam.get_user(UserName=name)["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    started = time.monotonic()
    eventually(lambda: client_for(tern, "sts", WEST, key).get_caller_identity())
    assert time.monotonic() - started < 1.0
    assert client_for(tern, "sts", EAST, key).get_caller_identity()["Arn"].endswith(f":user/{name}")
    with pytest.raises(ClientError) as e:
        east_iam.create_user(UserName=name)
    assert code(e.value) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as e:
        west_iam.delete_user(UserName=name)
    assert code(e.value) == "DeleteConflict"


def test_identity_policies_govern_s3(tern, s3, bucket):
    iam = tern.client("iam")
    name, key = new_user(iam, None, allow("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
    user_s3 = client_for(tern, "s3", EAST, key)
    eventually(lambda: user_s3.list_objects_v2(Bucket=bucket))
    with pytest.raises(ClientError) as e:
        user_s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert code(e.value) == "AccessDenied"
    assert "s3:PutObject" in e.value.response["Error"]["Message"]
    iam.put_user_policy(UserName=name, PolicyName="write", PolicyDocument=policy(
        allow("s3:PutObject", f"arn:aws:s3:::{bucket}/*"),
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/locked/*"},
    ))
    eventually(lambda: user_s3.put_object(Bucket=bucket, Key="k", Body=b"x"))
    with pytest.raises(ClientError) as e:
        user_s3.put_object(Bucket=bucket, Key="locked/k", Body=b"x")
    assert code(e.value) == "AccessDenied", "explicit deny wins"
    s3.put_object(Bucket=bucket, Key="secret", Body=b"s")
    with pytest.raises(ClientError) as e:
        user_s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "secret"})
    assert code(e.value) == "AccessDenied", "a copy needs s3:GetObject on its source"
    stored = iam.get_user_policy(UserName=name, PolicyName="write")["PolicyDocument"]
    assert stored["Statement"][1]["Effect"] == "Deny"
    with pytest.raises(ClientError) as e:
        iam.put_user_policy(UserName=name, PolicyName="bad", PolicyDocument='{"Statement": [{"Effect": "Allow"}]}')
    assert code(e.value) == "MalformedPolicyDocument"
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["p", "write"]


def test_sts_assume_role(tern, s3, bucket):
    iam = tern.client("iam")
    name, key = new_user(iam, None, allow("sts:AssumeRole"))
    role = unique("role")
    trust = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{name}"}, "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=policy(allow("s3:ListBucket")))
    assert iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"

    sts = client_for(tern, "sts", WEST, key)
    session = eventually(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="job", DurationSeconds=900))
    creds = session["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    for region in (EAST, WEST):
        who = client_for(tern, "sts", region, creds).get_caller_identity()
        assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/job"
    role_s3 = client_for(tern, "s3", EAST, creds)
    role_s3.list_objects_v2(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        role_s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert code(e.value) == "AccessDenied"
    forged = dict(creds, SessionToken=creds["SessionToken"][:-8] + "AAAAAAA=")
    with pytest.raises(ClientError) as e:
        client_for(tern, "sts", EAST, forged).get_caller_identity()
    assert code(e.value) in ("InvalidClientTokenId", "SignatureDoesNotMatch")

    with pytest.raises(ClientError) as e:
        tern.client("sts").assume_role(RoleArn=arn, RoleSessionName="root")
    assert code(e.value) == "AccessDenied", "the root may not assume roles"
    _, other = new_user(iam, None, allow("sts:AssumeRole"))
    with pytest.raises(ClientError) as e:
        eventually(lambda: client_for(tern, "sts", EAST, other).assume_role(RoleArn=arn, RoleSessionName="other"))
    assert code(e.value) == "AccessDenied", "the trust policy does not name this user"
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName=unique("r"), AssumeRolePolicyDocument=policy(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/nobody"}, "Action": "sts:AssumeRole"}))
    assert code(e.value) == "MalformedPolicyDocument", "unknown principals are refused"


def key_policy(*statements):
    root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    return policy(root, *statements)


def test_who_may_use_which_key_where(tern, bucket):
    iam, east = tern.client("iam"), tern.client("kms", EAST)
    alice_name, alice = new_user(iam, None, allow("kms:*"))
    bob_name, bob = new_user(iam)
    carol_name, carol = new_user(iam)
    user_arn = lambda n: f"arn:aws:iam::{ACCOUNT}:user/{n}"  # noqa: E731

    key = east.create_key(MultiRegion=True, Policy=key_policy(
        {"Effect": "Allow", "Principal": {"AWS": user_arn(bob_name)}, "Action": "kms:Encrypt", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": user_arn(alice_name)}, "Action": "kms:ScheduleKeyDeletion", "Resource": "*"},
    ))["KeyMetadata"]["KeyId"]
    kms_as = lambda creds, region=EAST: client_for(tern, "kms", region, creds)  # noqa: E731

    blob = eventually(lambda: kms_as(alice).encrypt(KeyId=key, Plaintext=b"a"))["CiphertextBlob"]
    assert kms_as(bob).encrypt(KeyId=key, Plaintext=b"b")["KeyId"].endswith(key), "named in the key policy directly"
    with pytest.raises(ClientError) as e:
        kms_as(bob).decrypt(CiphertextBlob=blob)
    assert code(e.value) == "AccessDeniedException"
    assert "kms:Decrypt" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        kms_as(alice).schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert code(e.value) == "AccessDeniedException", "an explicit deny beats alice's kms:*"

    grant = east.create_grant(KeyId=key, GranteePrincipal=user_arn(carol_name), Operations=["Decrypt"],
                              Constraints={"EncryptionContextSubset": {"app": "x"}})
    tagged = east.encrypt(KeyId=key, Plaintext=b"c", EncryptionContext={"app": "x"})["CiphertextBlob"]
    assert eventually(lambda: kms_as(carol).decrypt(CiphertextBlob=tagged, EncryptionContext={"app": "x"}))["Plaintext"] == b"c"
    with pytest.raises(ClientError) as e:
        kms_as(carol).decrypt(CiphertextBlob=blob)
    assert code(e.value) == "AccessDeniedException", "the grant's constraint is not met"
    east.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    with pytest.raises(ClientError):
        kms_as(carol).decrypt(CiphertextBlob=tagged, EncryptionContext={"app": "x"})

    east.replicate_key(KeyId=key, ReplicaRegion=WEST)
    replica_decrypt = eventually(lambda: kms_as(alice, WEST).decrypt(CiphertextBlob=blob))
    assert replica_decrypt["Plaintext"] == b"a", "the replica's default policy delegates"
    west = tern.client("kms", WEST)
    west.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(
        {"Effect": "Deny", "Principal": {"AWS": user_arn(alice_name)}, "Action": "kms:Decrypt", "Resource": "*"}))
    with pytest.raises(ClientError) as e:
        kms_as(alice, WEST).decrypt(CiphertextBlob=blob)
    assert code(e.value) == "AccessDeniedException"
    assert kms_as(alice).decrypt(CiphertextBlob=blob)["Plaintext"] == b"a", "policies are per region"

    with pytest.raises(ClientError) as e:
        east.put_key_policy(KeyId=key, PolicyName="default", Policy=policy(
            {"Effect": "Allow", "Principal": {"AWS": user_arn(bob_name)}, "Action": "kms:Encrypt", "Resource": "*"}))
    assert code(e.value) == "MalformedPolicyDocumentException", "the lockout safety check"


def test_s3_calls_kms_as_the_caller(tern, bucket):
    iam, east = tern.client("iam"), tern.client("kms", EAST)
    s3_only, creds = new_user(iam, None, allow("s3:*"))
    key = east.create_key(Policy=key_policy())["KeyMetadata"]["Arn"]
    user_s3 = client_for(tern, "s3", EAST, creds)
    with pytest.raises(ClientError) as e:
        eventually(lambda: user_s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key))
    assert code(e.value) == "AccessDenied", "no kms:GenerateDataKey, no SSE-KMS PUT"
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{EAST}.amazonaws.com"}}
    iam.put_user_policy(UserName=s3_only, PolicyName="kms-through-s3", PolicyDocument=policy(
        allow(["kms:GenerateDataKey", "kms:Decrypt"], key, Condition=via_s3)))
    eventually(lambda: user_s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key))
    assert user_s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    with pytest.raises(ClientError) as e:
        client_for(tern, "kms", EAST, creds).generate_data_key(KeyId=key, KeySpec="AES_256")
    assert code(e.value) == "AccessDeniedException", "kms:ViaService limits the key to S3"


@pytest.mark.parametrize("made_in", [EAST, WEST])
def test_a_new_access_key_works_at_once_in_every_region(tern, made_in):
    """No retries: the first request with a key made a moment ago, in either
    region and to any service, is answered as that key's owner."""
    iam = tern.client("iam", made_in)
    for _ in range(5):
        name, key = new_user(iam, None, allow(["s3:CreateBucket", "s3:ListAllMyBuckets"]))
        for region in (WEST, EAST):
            s3 = client_for(tern, "s3", region, key)
            bucket = unique("fresh-key").lower()
            config = {} if region == EAST else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=bucket, **config)
            tern.client("s3", region).delete_bucket(Bucket=bucket)
        for region in (WEST, EAST):
            assert client_for(tern, "sts", region, key).get_caller_identity()["Arn"].endswith(f":user/{name}")
