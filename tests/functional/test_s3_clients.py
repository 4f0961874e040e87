"""Real S3 clients (boto3 and the `aws` CLI) against the real all-in-one cluster and its identity
service: EC2 credentials from identity's API, buckets and objects, a 100 MiB multipart upload,
presigned GET and PUT, delete-objects, objects shared with the Swift API, and the refusals
(bad signature, expired presigned URL, a stale or skewed request date) with no data leaked.
Every client talks to 127.0.0.1 only.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from tests.functional.cluster import Cluster  # noqa: E402

REGION = "us-east-1"
MIB = 1024 * 1024
CLI_TIMEOUT_S = 600


# ---- identity: tokens and EC2 credentials ------------------------------------------------

def identity_call(cluster: Cluster, method: str, path: str, body: Any = None,
                  token: str | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{cluster.identity_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **({"X-Auth-Token": token} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), None


def ec2_credentials(cluster: Cluster, user: str, password: str,
                    project: str) -> tuple[str, str, str]:
    """(access, secret, project id): a password token, then POST .../credentials/OS-EC2."""
    status, headers, body = identity_call(cluster, "POST", "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
    assert status == 201, (status, body)
    token = headers.get("X-Subject-Token") or headers.get("x-subject-token")
    user_id = body["token"]["user"]["id"]
    project_id = body["token"]["project"]["id"]
    status, _, created = identity_call(cluster, "POST", f"/users/{user_id}/credentials/OS-EC2",
                                       {"tenant_id": project_id}, token=token)
    assert status in (200, 201), (status, created)
    return created["credential"]["access"], created["credential"]["secret"], project_id


@pytest.fixture(scope="module")
def tester(cluster: Cluster) -> tuple[str, str, str]:
    return ec2_credentials(cluster, "tester", "testing", "test")


@pytest.fixture(scope="module")
def endpoint(cluster: Cluster) -> str:
    return f"http://127.0.0.1:{cluster.proxy_port}"


@pytest.fixture(scope="module")
def s3(endpoint: str, tester: tuple[str, str, str]) -> Any:
    access, secret, _ = tester
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
                        aws_secret_access_key=secret, region_name=REGION,
                        config=BotoConfig(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1},
                                          proxies={}))


def swift_token(cluster: Cluster, user: str = "test:tester", key: str = "testing") -> \
        tuple[str, str]:
    """(storage URL, token) from Swift v1 auth, which the proxy takes to identity."""
    request = urllib.request.Request(cluster.auth_url, headers={"X-Auth-User": user,
                                                                "X-Auth-Key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["X-Storage-Url"], response.headers["X-Auth-Token"]


def swift_request(url: str, token: str, method: str = "GET", body: bytes | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"X-Auth-Token": token, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def raw_request(endpoint: str, request: AWSRequest) -> tuple[int, bytes]:
    """Send a botocore-signed request as it is, over plain http.client."""
    split = urllib.parse.urlsplit(request.url)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=60)
    try:
        path = split.path + (f"?{split.query}" if split.query else "")
        conn.request(request.method, path, body=request.body or None,
                     headers=dict(request.headers.items()))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    start = body.find(b"<Code>")
    return body[start + 6:body.find(b"</Code>")].decode() if start >= 0 else ""


# ---- boto3 ----------------------------------------------------

def test_boto3_buckets_and_objects(s3: Any) -> None:
    s3.create_bucket(Bucket="boto-objects")
    assert "boto-objects" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as again:
        s3.create_bucket(Bucket="boto-objects")
    assert again.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    s3.put_object(Bucket="boto-objects", Key="docs/a.txt", Body=b"alpha",
                  Metadata={"owner": "tester"}, ContentType="text/plain")
    got = s3.get_object(Bucket="boto-objects", Key="docs/a.txt")
    assert got["Body"].read() == b"alpha"
    assert {k.lower(): v for k, v in got["Metadata"].items()} == {"owner": "tester"}
    assert got["ETag"] == f'"{hashlib.md5(b"alpha").hexdigest()}"'
    ranged = s3.get_object(Bucket="boto-objects", Key="docs/a.txt", Range="bytes=1-3")
    assert ranged["Body"].read() == b"lph" and ranged["ResponseMetadata"]["HTTPStatusCode"] \
        == 206
    s3.copy_object(Bucket="boto-objects", Key="docs/b.txt",
                   CopySource={"Bucket": "boto-objects", "Key": "docs/a.txt"})
    assert s3.head_object(Bucket="boto-objects", Key="docs/b.txt")["ContentLength"] == 5
    listing = s3.list_objects_v2(Bucket="boto-objects", Prefix="docs/")
    assert [item["Key"] for item in listing["Contents"]] == ["docs/a.txt", "docs/b.txt"]
    pages = s3.get_paginator("list_objects").paginate(Bucket="boto-objects", MaxKeys=1)
    assert [c["Key"] for page in pages for c in page.get("Contents", [])] == \
        ["docs/a.txt", "docs/b.txt"]
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="boto-objects", Key="nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    deleted = s3.delete_objects(Bucket="boto-objects", Delete={"Objects": [
        {"Key": "docs/a.txt"}, {"Key": "docs/b.txt"}, {"Key": "never"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["docs/a.txt", "docs/b.txt", "never"]
    assert s3.list_objects_v2(Bucket="boto-objects")["KeyCount"] == 0
    s3.delete_bucket(Bucket="boto-objects")
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket="boto-objects")
    assert gone.value.response["Error"]["Code"] in ("404", "NoSuchBucket")


def test_boto3_multipart_and_swift_sees_it(cluster: Cluster, s3: Any) -> None:
    s3.create_bucket(Bucket="boto-mpu")
    upload = s3.create_multipart_upload(Bucket="boto-mpu", Key="joined")
    part1, part2 = os.urandom(5 * MIB), os.urandom(1000)
    etags = [s3.upload_part(Bucket="boto-mpu", Key="joined", UploadId=upload["UploadId"],
                            PartNumber=n, Body=data)["ETag"]
             for n, data in ((1, part1), (2, part2))]
    parts = s3.list_parts(Bucket="boto-mpu", Key="joined", UploadId=upload["UploadId"])
    assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2]
    done = s3.complete_multipart_upload(
        Bucket="boto-mpu", Key="joined", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag}
                                   for n, etag in enumerate(etags, 1)]})
    assert done["ETag"].endswith('-2"')
    url, token = swift_token(cluster)
    status, _, body = swift_request(f"{url}/boto-mpu/joined", token)
    assert status == 200 and body == part1 + part2
    aborted = s3.create_multipart_upload(Bucket="boto-mpu", Key="aborted")
    s3.abort_multipart_upload(Bucket="boto-mpu", Key="aborted", UploadId=aborted["UploadId"])
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="boto-mpu")


def test_user_metadata_names_arrive_lower_case(s3: Any) -> None:
    s3.create_bucket(Bucket="meta-case")
    s3.put_object(Bucket="meta-case", Key="k", Body=b"x", Metadata={"owner": "tester"})
    assert s3.head_object(Bucket="meta-case", Key="k")["Metadata"] == {"owner": "tester"}


def test_swift_and_s3_share_objects(cluster: Cluster, s3: Any) -> None:
    url, token = swift_token(cluster)
    assert swift_request(f"{url}/shared", token, "PUT")[0] in (201, 202)
    assert swift_request(f"{url}/shared/from-swift", token, "PUT", b"swift wrote this",
                         {"X-Object-Meta-Origin": "swift"})[0] == 201
    got = s3.get_object(Bucket="shared", Key="from-swift")
    assert got["Body"].read() == b"swift wrote this"
    assert {k.lower(): v for k, v in got["Metadata"].items()} == {"origin": "swift"}
    s3.put_object(Bucket="shared", Key="from-s3", Body=b"s3 wrote this",
                  Metadata={"origin": "s3"})
    status, headers, body = swift_request(f"{url}/shared/from-s3", token)
    assert status == 200 and body == b"s3 wrote this"
    assert {k.lower(): v for k, v in headers.items()}["x-object-meta-origin"] == "s3"


def http_call(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """A plain request to a URL as it is (no Content-Type added, unlike urllib)."""
    split = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=60)
    try:
        conn.request(method, f"{split.path}?{split.query}", body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_presigned_get_and_put(endpoint: str, tester: tuple[str, str, str],
                               signature_version: str) -> None:
    access, secret, _ = tester
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
                          aws_secret_access_key=secret, region_name=REGION,
                          config=BotoConfig(s3={"addressing_style": "path"},
                                            signature_version=signature_version,
                                            retries={"max_attempts": 1}))
    bucket = f"presigned-{signature_version}"
    client.create_bucket(Bucket=bucket)
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": bucket,
                                                                  "Key": "up"}, ExpiresIn=300)
    assert http_call("PUT", put_url, b"uploaded by URL")[0] == 200
    get_url = client.generate_presigned_url("get_object", Params={"Bucket": bucket,
                                                                  "Key": "up"}, ExpiresIn=300)
    assert http_call("GET", get_url) == (200, b"uploaded by URL")
    status, body = http_call("GET", get_url.replace(f"/{bucket}/up", f"/{bucket}/other"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    status, body = http_call("PUT", put_url, b"a different body for the same URL" * 0)
    assert status == 200        # presigned PUTs do not sign the body (UNSIGNED-PAYLOAD)


# ---- refusals ----------------------------------------------------

@pytest.fixture(scope="module")
def secret_object(s3: Any) -> tuple[str, str]:
    s3.create_bucket(Bucket="guarded")
    s3.put_object(Bucket="guarded", Key="secret", Body=b"TOP-SECRET-DATA")
    return "guarded", "secret"


def signed(endpoint: str, access: str, secret: str, path: str,
           when: datetime.datetime | None = None) -> AWSRequest:
    request = AWSRequest(method="GET", url=f"{endpoint}{path}")
    signer = S3SigV4Auth(Credentials(access, secret), "s3", REGION)
    if when is None:
        signer.add_auth(request)
    else:
        # a client whose clock says `when` (or a request captured then and replayed now)
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return request


def test_bad_signature_refused(endpoint: str, tester: tuple[str, str, str],
                               secret_object: tuple[str, str]) -> None:
    access, secret, _ = tester
    status, body = raw_request(endpoint, signed(endpoint, access, secret + "x",
                                                "/guarded/secret"))
    assert status == 403 and error_code(body) == "SignatureDoesNotMatch"
    assert b"TOP-SECRET" not in body
    status, body = raw_request(endpoint, signed(endpoint, "AKIDUNKNOWN", secret,
                                                "/guarded/secret"))
    assert status == 403 and b"TOP-SECRET" not in body
    status, body = raw_request(endpoint, signed(endpoint, access, secret, "/guarded/secret"))
    assert status == 200 and body == b"TOP-SECRET-DATA"


def test_expired_presigned_url_refused(s3: Any, secret_object: tuple[str, str]) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "guarded",
                                                          "Key": "secret"}, ExpiresIn=1)
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)
    body = refused.value.read()
    assert refused.value.code == 403 and error_code(body) == "AccessDenied"
    assert b"TOP-SECRET" not in body


@pytest.mark.parametrize("offset_minutes", [-20, 20], ids=["stale-replay", "clock-ahead"])
def test_stale_or_skewed_date_refused(endpoint: str, tester: tuple[str, str, str],
                                      secret_object: tuple[str, str],
                                      offset_minutes: int) -> None:
    access, secret, _ = tester
    when = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + \
        datetime.timedelta(minutes=offset_minutes)
    status, body = raw_request(endpoint, signed(endpoint, access, secret, "/guarded/secret",
                                                when))
    assert status == 403 and error_code(body) == "RequestTimeTooSkewed"
    assert b"TOP-SECRET" not in body


def test_other_project_cannot_read(cluster: Cluster, endpoint: str,
                                   tester: tuple[str, str, str],
                                   secret_object: tuple[str, str]) -> None:
    access, secret, _ = ec2_credentials(cluster, "tester2", "testing2", "test2")
    _, _, project_id = tester
    status, body = raw_request(endpoint, signed(endpoint, access, secret,
                                                f"/{project_id}:guarded/secret"))
    assert status == 403 and b"TOP-SECRET" not in body


# ---- the aws CLI --------------------------------------------------------------------------------

def aws_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    found = beside if os.path.exists(beside) else shutil.which("aws")
    if not found:
        pytest.fail("the aws CLI is missing: pip install -e .[test]")
    return found


@pytest.fixture
def aws(tmp_path: Any, endpoint: str, tester: tuple[str, str, str]) -> Iterator[Any]:
    access, secret, _ = tester
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("AWS_") and name.lower() not in ("http_proxy",
                                                                   "https_proxy")}
    env.update(AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret,
               AWS_CONFIG_FILE=str(config),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
               AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1",
               AWS_DEFAULT_REGION=REGION)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([aws_binary(), "--endpoint-url", endpoint, *args], env=env,
                                capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        if check:
            assert result.returncode == 0, f"aws {' '.join(args)}: {result.stderr}"
        return result
    yield run


def test_aws_cli_mb_cp_ls_sync_rm(cluster: Cluster, aws: Any, tmp_path: Any) -> None:
    aws("s3", "mb", "s3://cli-bucket")
    small = tmp_path / "small.txt"
    small.write_bytes(b"small file\n")
    aws("s3", "cp", str(small), "s3://cli-bucket/small.txt")
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:       # 100 MiB: aws s3 cp goes multipart above 8 MiB
        for _ in range(100):
            handle.write(os.urandom(MIB))
    aws("s3", "cp", str(big), "s3://cli-bucket/big.bin")
    listing = aws("s3", "ls", "s3://cli-bucket/").stdout
    assert "small.txt" in listing and "big.bin" in listing and str(100 * MIB) in listing
    url, token = swift_token(cluster)
    status, headers, body = swift_request(f"{url}/cli-bucket/big.bin", token)
    expected = hashlib.md5(big.read_bytes()).hexdigest()
    assert status == 200 and hashlib.md5(body).hexdigest() == expected
    back = tmp_path / "back.bin"
    aws("s3", "cp", "s3://cli-bucket/big.bin", str(back))
    assert hashlib.md5(back.read_bytes()).hexdigest() == expected
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for name in ("one", "two", "sub/three"):
        (tree / name).write_text(name)
    aws("s3", "sync", str(tree), "s3://cli-bucket/tree")
    listed = aws("s3", "ls", "--recursive", "s3://cli-bucket/tree/").stdout
    assert all(name in listed for name in ("tree/one", "tree/two", "tree/sub/three"))
    second = aws("s3", "sync", str(tree), "s3://cli-bucket/tree").stdout
    assert "upload:" not in second          # nothing changed: nothing sent again
    aws("s3api", "delete-objects", "--bucket", "cli-bucket", "--delete",
        '{"Objects": [{"Key": "tree/one"}, {"Key": "tree/two"}]}')
    listed = aws("s3", "ls", "--recursive", "s3://cli-bucket/tree/").stdout
    assert "tree/one" not in listed and "tree/sub/three" in listed
    aws("s3", "rm", "--recursive", "s3://cli-bucket/")
    aws("s3", "rb", "s3://cli-bucket")
    assert "cli-bucket" not in aws("s3", "ls").stdout
