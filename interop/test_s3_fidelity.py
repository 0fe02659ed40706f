"""boto3 against Tern: the finer points of S3 that stock tools and suites rely on."""

import base64
import hashlib
import os
import zlib

import pytest
from botocore.exceptions import ClientError


def code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def test_url_encoded_listings_encode_as_s3_does(s3, bucket):
    keys = ["foo+1/bar", "foo/bar/xyzzy", "quux ab/thud", "asdf+b", "tab\there", "line\nbreak", "~tilde*(x).txt"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    # Asked for explicitly, boto3 leaves the values as the server sent them.
    v2 = s3.list_objects_v2(Bucket=bucket, Delimiter="/", EncodingType="url", StartAfter="a b")
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["foo%2B1/", "foo/", "quux+ab/"]
    assert [o["Key"] for o in v2["Contents"]] == ["asdf%2Bb", "line%0Abreak", "tab%09here", "%7Etilde*%28x%29.txt"]
    assert (v2["Delimiter"], v2["StartAfter"], v2["EncodingType"]) == ("/", "a+b", "url")
    v1 = s3.list_objects(Bucket=bucket, Prefix="foo+", Delimiter="+", EncodingType="url", MaxKeys=1)
    assert (v1["Prefix"], v1["Delimiter"], v1["Contents"][0]["Key"]) == ("foo%2B", "%2B", "foo%2B1/bar")
    v1 = s3.list_objects(Bucket=bucket, Prefix="foo", Delimiter="/", EncodingType="url", MaxKeys=1)
    assert (v1["Prefix"], v1["NextMarker"]) == ("foo", "foo%2B1/")
    versions = s3.list_object_versions(Bucket=bucket, Prefix="quux ab/", EncodingType="url")
    assert [v["Key"] for v in versions["Versions"]] == ["quux+ab/thud"]
    # Left to itself, boto3 asks for url encoding and decodes every value back.
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys)


def test_listing_edge_parameters(s3, bucket):
    for key in ("a", "b/c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    none = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert (none["IsTruncated"], none["KeyCount"], "Contents" in none) == (False, 0, False)
    assert s3.list_objects(Bucket=bucket, MaxKeys=0)["IsTruncated"] is False
    undelimited = s3.list_objects_v2(Bucket=bucket, Delimiter="")
    assert "Delimiter" not in undelimited
    assert [o["Key"] for o in undelimited["Contents"]] == ["a", "b/c"]
    with pytest.raises(ClientError) as refused:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert code(refused.value) == "InvalidArgument"
    assert refused.value.response["Error"]["Message"] == "The continuation token provided is incorrect"
    owned = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"]
    assert all(o["Owner"]["ID"] for o in owned)
    assert all("Owner" not in o for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    # Without a delimiter, ListObjects (v1) names no NextMarker: the last key is the marker.
    page = s3.list_objects(Bucket=bucket, MaxKeys=1)
    assert (page["IsTruncated"], "NextMarker" in page) == (True, False)


def test_list_buckets_pages_filters_and_names_regions(tern, s3):
    prefix = f"lb-{id(s3) % 100000}-"
    names = [f"{prefix}{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    eu = tern.client(region="eu-west-1")
    eu.create_bucket(Bucket=f"{prefix}eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    seen, token, pages = [], None, 0
    while True:
        args = {"MaxBuckets": 2, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
        page = s3.list_buckets(**args)
        pages += 1
        assert page["Prefix"] == prefix
        seen += [(b["Name"], b["BucketRegion"]) for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if not token:
            break
    assert pages == 3
    assert seen == [(n, "us-east-1") for n in names] + [(f"{prefix}eu", "eu-west-1")]
    in_eu = s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-1")["Buckets"]
    assert [b["Name"] for b in in_eu] == [f"{prefix}eu"]
    paginated = [b["Name"] for p in s3.get_paginator("list_buckets").paginate(Prefix=prefix, PaginationConfig={"PageSize": 4}) for b in p["Buckets"]]
    assert paginated == names + [f"{prefix}eu"]
    unvalidated = tern.client(parameter_validation=False)
    for bad in (0, 10001):
        with pytest.raises(ClientError) as refused:
            unvalidated.list_buckets(MaxBuckets=bad)
        assert code(refused.value) == "InvalidArgument"


def multipart(s3, bucket, key, parts, **create):
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return upload, done


def test_reads_by_part_number(s3, bucket):
    parts = [b"a" * (5 << 20), b"b" * (5 << 20), b"c" * 1000]
    upload, done = multipart(s3, bucket, "mp", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": done})
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert (second["PartsCount"], second["ContentLength"]) == (3, 5 << 20)
    assert second["ContentRange"] == f"bytes {5 << 20}-{(10 << 20) - 1}/{(10 << 20) + 1000}"
    assert second["Body"].read() == parts[1]
    head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert (head["ResponseMetadata"]["HTTPStatusCode"], head["ContentLength"], head["PartsCount"]) == (206, 1000, 3)
    with pytest.raises(ClientError) as beyond:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=4)
    assert (code(beyond.value), beyond.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidPartNumber", 416)
    s3.put_object(Bucket=bucket, Key="single", Body=b"whole object")
    whole = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert whole["Body"].read() == b"whole object"
    assert whole["ContentLength"] == 12
    with pytest.raises(ClientError) as beyond:
        s3.head_object(Bucket=bucket, Key="single", PartNumber=2)
    assert beyond.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_checksums_are_returned_only_when_asked_for(tern, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"checked", ChecksumAlgorithm="SHA256")
    # boto3 asks for checksums by default; this client asks only when told to.
    s3 = tern.client(response_checksum_validation="when_required")
    plain = s3.get_object(Bucket=bucket, Key="k")
    assert "ChecksumSHA256" not in plain and "ChecksumSHA256" not in s3.head_object(Bucket=bucket, Key="k")
    asked = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert asked["ChecksumSHA256"] and asked["ChecksumType"] == "FULL_OBJECT"
    assert s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")["ChecksumSHA256"] == asked["ChecksumSHA256"]


def test_tag_counts_and_empty_tag_values(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1&empty=")
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    assert s3.head_object(Bucket=bucket, Key="k")["TagCount"] == 2
    s3.put_object(Bucket=bucket, Key="untagged", Body=b"x")
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="untagged")
    tags = s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "1"), ("empty", "")]
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "only", "Value": ""}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "only", "Value": ""}]
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 1


def test_version_ids_are_reported_as_the_bucket_versioning_says(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "VersionId" not in put
    assert "VersionId" not in s3.head_object(Bucket=bucket, Key="k")
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert "DeleteMarker" not in deleted and "VersionId" not in deleted
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    versioned = s3.put_object(Bucket=bucket, Key="k", Body=b"y")["VersionId"]
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == versioned
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    suspended = s3.put_object(Bucket=bucket, Key="k", Body=b"z")
    assert suspended["VersionId"] == "null"
    assert s3.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert (marker["DeleteMarker"], marker["VersionId"]) == (True, "null")


def test_conditional_writes_with_if_match(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=first)["ETag"]
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfMatch=first)
    assert (code(stale.value), stale.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as absent:
        s3.put_object(Bucket=bucket, Key="nothing-here", Body=b"x", IfMatch=first)
    assert (code(absent.value), absent.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    upload, done = multipart(s3, bucket, "k", [b"multi"])
    with pytest.raises(ClientError) as stale:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done}, IfMatch=first)
    assert code(stale.value) == "PreconditionFailed"
    finished = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done}, IfMatch=second)
    assert s3.get_object(Bucket=bucket, Key="k")["ETag"] == finished["ETag"]
    upload, done = multipart(s3, bucket, "fresh", [b"x"])
    with pytest.raises(ClientError) as absent:
        s3.complete_multipart_upload(Bucket=bucket, Key="fresh", UploadId=upload, MultipartUpload={"Parts": done}, IfMatch=second)
    assert code(absent.value) == "NoSuchKey"
    assert s3.list_parts(Bucket=bucket, Key="fresh", UploadId=upload)["Parts"]  # a refused Complete keeps the upload


def test_a_retried_complete_answers_as_the_first(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    upload, done = multipart(s3, bucket, "k", [b"a" * (5 << 20), b"b"])
    first = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done})
    assert (again["ETag"], again["VersionId"]) == (first["ETag"], first["VersionId"])
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 1
    # Once another version is current, the upload is gone for good.
    s3.put_object(Bucket=bucket, Key="k", Body=b"newer")
    with pytest.raises(ClientError) as gone:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done})
    assert code(gone.value) == "NoSuchUpload"
    with pytest.raises(ClientError) as other:
        s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId="not-an-upload", MultipartUpload={"Parts": done})
    assert code(other.value) == "NoSuchUpload"


ALL_ATTRIBUTES = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def test_get_object_attributes(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="whole", Body=b"twelve bytes", ChecksumAlgorithm="CRC32")
    whole = s3.get_object_attributes(Bucket=bucket, Key="whole", ObjectAttributes=ALL_ATTRIBUTES)
    assert whole["ETag"] == put["ETag"].strip('"')
    assert (whole["ObjectSize"], whole["StorageClass"]) == (12, "STANDARD")
    assert whole["Checksum"]["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert "ObjectParts" not in whole and "VersionId" not in whole and whole["LastModified"]
    only_size = s3.get_object_attributes(Bucket=bucket, Key="whole", ObjectAttributes=["ObjectSize"])
    assert "ETag" not in only_size and only_size["ObjectSize"] == 12

    parts = [b"p" * (5 << 20)] * 3 + [b"end"]
    upload, done = multipart(s3, bucket, "parts", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload, MultipartUpload={"Parts": done})
    first = s3.get_object_attributes(Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts"], MaxParts=2)
    listed = first["ObjectParts"]
    assert (listed["TotalPartsCount"], listed["IsTruncated"], listed["NextPartNumberMarker"]) == (4, True, 2)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 << 20), (2, 5 << 20)]
    rest = s3.get_object_attributes(Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts"], MaxParts=2,
                                    PartNumberMarker=2)["ObjectParts"]
    assert [(p["PartNumber"], p["Size"]) for p in rest["Parts"]] == [(3, 5 << 20), (4, 3)]
    assert rest["IsTruncated"] is False

    key = "k" * 32
    s3.put_object(Bucket=bucket, Key="sse-c", Body=b"secret", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    with pytest.raises(ClientError) as keyless:
        s3.get_object_attributes(Bucket=bucket, Key="sse-c", ObjectAttributes=["ObjectSize"])
    assert keyless.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # botocore encodes the key and adds its MD5 for other calls, not this one.
    with_key = s3.get_object_attributes(
        Bucket=bucket, Key="sse-c", ObjectAttributes=["ObjectSize"], SSECustomerAlgorithm="AES256",
        SSECustomerKey=base64.b64encode(key.encode()).decode(),
        SSECustomerKeyMD5=base64.b64encode(hashlib.md5(key.encode()).digest()).decode())
    assert with_key["ObjectSize"] == 6
    with pytest.raises(ClientError) as missing:
        s3.get_object_attributes(Bucket=bucket, Key="absent", ObjectAttributes=["ObjectSize"])
    assert code(missing.value) == "NoSuchKey"


SERVED_CLASSES = ["REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"]


def test_storage_classes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="standard", Body=b"x", StorageClass="STANDARD")
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="standard")  # S3 names no class for STANDARD
    for cls in SERVED_CLASSES:
        s3.put_object(Bucket=bucket, Key=f"put/{cls}", Body=b"x", StorageClass=cls)
        assert s3.head_object(Bucket=bucket, Key=f"put/{cls}")["StorageClass"] == cls
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"standard": "STANDARD", **{f"put/{c}": c for c in SERVED_CLASSES}}
    versions = {v["Key"]: v["StorageClass"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert versions == listed
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "standard"}, StorageClass="ONEZONE_IA")
    assert s3.head_object(Bucket=bucket, Key="copied")["StorageClass"] == "ONEZONE_IA"
    upload, done = multipart(s3, bucket, "multi", [b"m"], StorageClass="STANDARD_IA")
    assert s3.list_parts(Bucket=bucket, Key="multi", UploadId=upload)["StorageClass"] == "STANDARD_IA"
    assert [u["StorageClass"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == ["STANDARD_IA"]
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload, MultipartUpload={"Parts": done})
    assert s3.get_object(Bucket=bucket, Key="multi")["StorageClass"] == "STANDARD_IA"
    for refused in ("GLACIER", "DEEP_ARCHIVE", "NOT_A_CLASS"):
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="archived", Body=b"x", StorageClass=refused)
        assert code(e.value) == "InvalidStorageClass"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="archived")


def test_full_object_checksums_of_multipart_uploads(s3, bucket):
    parts = [os.urandom(5 << 20), os.urandom(5 << 20), b"tail"]
    whole = base64.b64encode(zlib.crc32(b"".join(parts)).to_bytes(4, "big")).decode()
    created = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == ("CRC32", "FULL_OBJECT")
    upload, done = created["UploadId"], []
    for number, body in enumerate(parts, start=1):
        part = s3.upload_part(Bucket=bucket, Key="full", UploadId=upload, PartNumber=number, Body=body, ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]})
    listed = s3.list_parts(Bucket=bucket, Key="full", UploadId=upload)
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("CRC32", "FULL_OBJECT")
    wrong = base64.b64encode(b"\0\0\0\0").decode()
    with pytest.raises(ClientError) as mismatch:
        s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload, MultipartUpload={"Parts": done},
                                     ChecksumCRC32=wrong, ChecksumType="FULL_OBJECT")
    assert code(mismatch.value) == "BadDigest"
    finished = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload, MultipartUpload={"Parts": done},
                                            ChecksumCRC32=whole, ChecksumType="FULL_OBJECT")
    assert (finished["ChecksumCRC32"], finished["ChecksumType"]) == (whole, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (whole, "FULL_OBJECT")

    composite = s3.create_multipart_upload(Bucket=bucket, Key="composite", ChecksumAlgorithm="SHA256")
    assert composite["ChecksumType"] == "COMPOSITE"
    with pytest.raises(ClientError) as refused:
        s3.create_multipart_upload(Bucket=bucket, Key="x", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT")
    assert code(refused.value) == "InvalidRequest"
    with pytest.raises(ClientError) as mismatched:
        s3.upload_part(Bucket=bucket, Key="composite", UploadId=composite["UploadId"], PartNumber=1, Body=b"x",
                       ChecksumAlgorithm="CRC32")
    assert code(mismatched.value) == "InvalidRequest"
