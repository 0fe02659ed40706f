"""Stock clients over HTTPS (`tern up --tls`), trusting the deployment's CA
through AWS_CA_BUNDLE (boto3: `verify=`), as a user of a private CA would."""

import json
import time

from test_cse import python_client

EAST, WEST = "us-east-1", "eu-west-1"


def test_the_aws_cli_works_over_https_with_the_ca_bundle(tern_tls, tmp_path):
    tern_tls.aws("s3", "mb", "s3://tls-cli")
    src = tmp_path / "f.txt"
    src.write_bytes(b"over https")
    tern_tls.aws("s3", "cp", str(src), "s3://tls-cli/f.txt")
    assert tern_tls.aws("s3", "cp", "s3://tls-cli/f.txt", "-").stdout == "over https"
    listed = tern_tls.aws("s3", "ls", region=WEST).stdout
    assert "tls-cli" in listed, "the other region asks the registry over mutual TLS"
    without_ca = tern_tls.aws("s3", "ls", check=False, trust_ca=False)
    assert without_ca.returncode != 0 and "SSL" in without_ca.stderr, "nothing else trusts the local CA"


def test_boto3_kms_and_sse_c_over_https(tern_tls):
    s3, kms = tern_tls.client("s3"), tern_tls.client("kms")
    s3.create_bucket(Bucket="tls-boto3")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.put_object(Bucket="tls-boto3", Key="kms", Body=b"sealed", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    got = s3.get_object(Bucket="tls-boto3", Key="kms")
    assert got["Body"].read() == b"sealed" and got["SSEKMSKeyId"] == key
    customer = b"k" * 32
    s3.put_object(Bucket="tls-boto3", Key="ssec", Body=b"customer", SSECustomerAlgorithm="AES256", SSECustomerKey=customer)
    got = s3.get_object(Bucket="tls-boto3", Key="ssec", SSECustomerAlgorithm="AES256", SSECustomerKey=customer)
    assert got["Body"].read() == b"customer"


def test_the_official_s3_encryption_client_and_tern_cse_over_https(tern_tls, tmp_path):
    key = tern_tls.client("kms").create_key()["KeyMetadata"]["Arn"]
    tern_tls.client("s3").create_bucket(Bucket="tls-cse")
    python_client(tern_tls, key).put_object(Bucket="tls-cse", Key="py", Body=b"from python over https")
    out = tmp_path / "out"
    tern_tls.cse("get", "s3://tls-cse/py", str(out))
    assert out.read_bytes() == b"from python over https"


def test_replication_over_mutual_tls_and_tern_replication_with_the_ca_bundle(tern_tls):
    east, west = tern_tls.client("s3", EAST), tern_tls.client("s3", WEST)
    iam = tern_tls.client("iam", EAST)
    for client, name, region in ((east, "tls-src", EAST), (west, "tls-dst", WEST)):
        create = {"Bucket": name}
        if region != EAST:
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(**create)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="tls-crr", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "s3:GetObjectVersionForReplication", "s3:ReplicateObject"]}]}
    iam.put_role_policy(RoleName="tls-crr", PolicyName="crr", PolicyDocument=json.dumps(allow))
    east.put_bucket_replication(Bucket="tls-src", ReplicationConfiguration={"Role": role, "Rules": [{
        "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": "arn:aws:s3:::tls-dst"}}]})
    east.put_object(Bucket="tls-src", Key="k", Body=b"replicated over mutual tls")
    deadline = time.time() + 20
    while east.head_object(Bucket="tls-src", Key="k").get("ReplicationStatus") == "PENDING":
        assert time.time() < deadline, "replication did not finish"
        time.sleep(0.05)
    assert east.head_object(Bucket="tls-src", Key="k")["ReplicationStatus"] == "COMPLETED"
    assert west.get_object(Bucket="tls-dst", Key="k")["Body"].read() == b"replicated over mutual tls"
    status = json.loads(tern_tls.cli_replication("status", "--bucket", "tls-src", "--json"))
    assert status["counts"]["COMPLETED"] == 1
