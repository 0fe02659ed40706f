"""boto3 against Tern: the finer points of S3 that stock tools and suites rely on."""

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
