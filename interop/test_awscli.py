"""The aws cli's high-level s3 commands against Tern."""

import os


def test_mb_cp_ls_sync_rm(tern, tmp_path):
    tern.aws("s3", "mb", "s3://cli-bucket")
    small = tmp_path / "small.txt"
    small.write_text("hello from the aws cli\n")
    tern.aws("s3", "cp", str(small), "s3://cli-bucket/docs/small.txt")
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(20 * 1024 * 1024))
    tern.aws("s3", "cp", str(large), "s3://cli-bucket/large.bin")

    listing = tern.aws("s3", "ls", "--recursive", "s3://cli-bucket").stdout
    assert "docs/small.txt" in listing and "large.bin" in listing

    back = tmp_path / "back.bin"
    tern.aws("s3", "cp", "s3://cli-bucket/large.bin", str(back))
    assert back.read_bytes() == large.read_bytes()

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for i in range(5):
        (tree / "sub" / f"f{i}.txt").write_text(f"file {i}")
    (tree / "space name.txt").write_text("spaces survive")
    tern.aws("s3", "sync", str(tree), "s3://cli-bucket/tree")
    again = tern.aws("s3", "sync", str(tree), "s3://cli-bucket/tree").stdout
    assert again.strip() == "", "a second sync uploads nothing"
    mirror = tmp_path / "mirror"
    tern.aws("s3", "sync", "s3://cli-bucket/tree", str(mirror))
    assert (mirror / "space name.txt").read_text() == "spaces survive"
    assert len(list((mirror / "sub").iterdir())) == 5

    tern.aws("s3", "rm", "--recursive", "s3://cli-bucket")
    assert tern.aws("s3", "ls", "s3://cli-bucket").stdout.strip() == ""
    tern.aws("s3", "rb", "s3://cli-bucket")


def test_s3api_versioning_and_errors(tern):
    tern.aws("s3", "mb", "s3://cli-west", region="eu-west-1")
    tern.aws("s3api", "put-bucket-versioning", "--bucket", "cli-west", "--versioning-configuration", "Status=Enabled", region="eu-west-1")
    status = tern.aws("s3api", "get-bucket-versioning", "--bucket", "cli-west", region="eu-west-1").stdout
    assert '"Enabled"' in status
    missing = tern.aws("s3api", "head-object", "--bucket", "cli-west", "--key", "nope", region="eu-west-1", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr


def test_a_bucket_of_another_region_through_this_regions_endpoint(tern, tmp_path):
    """The aws cli, configured for us-east-1 and its endpoint, working with a
    bucket in eu-west-1: S3 redirects, the cli signs again for eu-west-1 and
    sends to the same endpoint, which relays to eu-west-1."""
    tern.aws("s3", "mb", "s3://cli-eu-bucket", region="eu-west-1")
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(9 * 1024 * 1024))
    tern.aws("s3", "cp", str(data), "s3://cli-eu-bucket/data.bin")
    assert "data.bin" in tern.aws("s3", "ls", "s3://cli-eu-bucket").stdout
    back = tmp_path / "back.bin"
    tern.aws("s3", "cp", "s3://cli-eu-bucket/data.bin", str(back))
    assert back.read_bytes() == data.read_bytes()
    # The object lives in eu-west-1, read there directly.
    head = tern.aws("s3api", "head-object", "--bucket", "cli-eu-bucket", "--key", "data.bin", region="eu-west-1")
    assert '"ContentLength": 9437184' in head.stdout
    tern.aws("s3", "rm", "s3://cli-eu-bucket/data.bin")
    tern.aws("s3", "rb", "s3://cli-eu-bucket")
