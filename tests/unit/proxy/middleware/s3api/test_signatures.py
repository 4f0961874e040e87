"""S3 signatures: AWS's published SigV4 examples, botocore-signed requests accepted and the same
requests tampered with refused, presigned URLs and their expiry, clock skew, SigV2, signed
payload hashes, and aws-chunked uploads with per-chunk signatures (built by the spec)."""

from __future__ import annotations

import hashlib
import io

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from common.aws_sig import derive_v4_signing_key, sign_v2, sign_v4
from proxy.middleware.s3api import sigv2, sigv4
from proxy.middleware.s3api.chunked import AwsChunkedInput, ChunkSigner
from proxy.middleware.s3api.payload import BodyRejected
from tests.unit.proxy.middleware.s3api.conftest import ACCESS, OTHER_ACCESS, SECRET
from tests.unit.proxy.middleware.s3api.harness import REGION, environ_of, send, sign, swift
from tests.unit.proxy.middleware.s3api.xml_helpers import error_code

AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"   # aws-sig-v4-test-suite's


# ---- AWS's published vectors ----------------------------------------------------------------

def test_aws_s3_get_object_example() -> None:
    """The GetObject example of AWS's S3 SigV4 documentation (Range: bytes=0-9)."""
    headers = {"host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9",
               "x-amz-content-sha256": sigv4.EMPTY_SHA256, "x-amz-date": "20130524T000000Z"}
    signed = ("host", "range", "x-amz-content-sha256", "x-amz-date")
    canonical = sigv4.canonical_request("GET", "/test.txt", "", signed, headers.get,
                                        sigv4.EMPTY_SHA256)
    assert canonical == (
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        f"x-amz-content-sha256:{sigv4.EMPTY_SHA256}\nx-amz-date:20130524T000000Z\n\n"
        f"host;range;x-amz-content-sha256;x-amz-date\n{sigv4.EMPTY_SHA256}")
    to_sign = sigv4.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
                                   canonical)
    assert to_sign.endswith(b"7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    key = derive_v4_signing_key(AWS_EXAMPLE_SECRET, "20130524", "us-east-1", "s3")
    assert sign_v4(key, to_sign) == \
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


@pytest.mark.parametrize(("path", "query", "signature"), [
    ("/", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("/", "Param2=value2&Param1=value1",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
], ids=["get-vanilla", "get-vanilla-query-order-key-case"])
def test_aws_sig_v4_test_suite(path: str, query: str, signature: str) -> None:
    """Cases of AWS's aws-sig-v4-test-suite (service `service`, 20150830T123600Z)."""
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    canonical = sigv4.canonical_request("GET", path, query, ("host", "x-amz-date"),
                                        headers.get, sigv4.EMPTY_SHA256)
    to_sign = sigv4.string_to_sign("20150830T123600Z",
                                   "20150830/us-east-1/service/aws4_request", canonical)
    key = derive_v4_signing_key(SUITE_SECRET, "20150830", "us-east-1", "service")
    assert sign_v4(key, to_sign) == signature


# The chunked upload example of AWS's documentation (sigv4-streaming): 64 KiB + 1 KiB of 'a'.
CHUNK_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]


def aws_chunked(chunks: list[bytes], signatures: list[str]) -> bytes:
    body = b""
    for data, signature in zip([*chunks, b""], signatures, strict=True):
        body += f"{len(data):x};chunk-signature={signature}\r\n".encode() + data + b"\r\n"
    return body


def example_signer() -> ChunkSigner:
    key = derive_v4_signing_key(AWS_EXAMPLE_SECRET, "20130524", "us-east-1", "s3")
    return ChunkSigner(key, "20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
                       CHUNK_SEED)


def test_aws_chunked_example_seed_and_chunks() -> None:
    headers = {"host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z",
               "x-amz-storage-class": "REDUCED_REDUNDANCY", "content-encoding": "aws-chunked",
               "content-length": "66824", "x-amz-decoded-content-length": "66560",
               "x-amz-content-sha256": sigv4.STREAMING_PAYLOAD}
    signed = ("content-encoding", "content-length", "host", "x-amz-content-sha256",
              "x-amz-date", "x-amz-decoded-content-length", "x-amz-storage-class")
    canonical = sigv4.canonical_request("PUT", "/examplebucket/chunkObject.txt", "", signed,
                                        headers.get, sigv4.STREAMING_PAYLOAD)
    key = derive_v4_signing_key(AWS_EXAMPLE_SECRET, "20130524", "us-east-1", "s3")
    to_sign = sigv4.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
                                   canonical)
    assert sign_v4(key, to_sign) == CHUNK_SEED
    body = aws_chunked([b"a" * 65536, b"a" * 1024], CHUNK_SIGNATURES)
    assert len(body) == 66824
    decoded = AwsChunkedInput(io.BytesIO(body), 66560, example_signer())
    out = b"".join(iter(lambda: decoded.read(10000), b""))
    assert out == b"a" * 66560 and decoded.error is None


@pytest.mark.parametrize("tamper", ["data", "signature", "order", "length"])
def test_aws_chunked_example_tampered(tamper: str) -> None:
    chunks, signatures, length = [b"a" * 65536, b"a" * 1024], list(CHUNK_SIGNATURES), 66560
    if tamper == "data":
        chunks[1] = b"a" * 1023 + b"b"
    elif tamper == "signature":
        signatures[2] = signatures[2][:-1] + ("0" if signatures[2][-1] != "0" else "1")
    elif tamper == "order":
        signatures[0], signatures[1] = signatures[1], signatures[0]
    else:
        length = 66559
    decoded = AwsChunkedInput(io.BytesIO(aws_chunked(chunks, signatures)), length,
                              example_signer())
    with pytest.raises(BodyRejected):
        while decoded.read(10000):
            pass
    assert decoded.error is not None


def test_sigv2_string_to_sign_follows_aws_example() -> None:
    """AWS's SigV2 GET example (the photos/puppy.jpg one): string and signature."""
    headers = {"date": "Tue, 27 Mar 2007 19:36:42 +0000"}
    resource = sigv2.canonical_resource("/photos/puppy.jpg", "", "johnsmith")
    to_sign = sigv2.string_to_sign("GET", headers, resource, headers["date"])
    assert to_sign == b"GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg"
    assert sign_v2(AWS_EXAMPLE_SECRET, to_sign) == "bWq2s1WEIj+Ydj0vQ697zp+IXMU="


# ---- botocore-signed requests through the middleware ------------------------------------------

@pytest.fixture(scope="module")
def bucket(stack) -> str:
    response = send(stack.app, sign("PUT", "/sigs", ACCESS, SECRET))
    assert response.status_int == 200, response.body
    response = send(stack.app, sign("PUT", "/sigs/existing", ACCESS, SECRET, body=b"secret!"))
    assert response.status_int == 200, response.body
    return "sigs"


@pytest.mark.parametrize("kind", ["v4", "v4-query", "v2", "v2-query"])
def test_botocore_signatures_accepted(stack, bucket: str, kind: str) -> None:
    got = send(stack.app, sign("GET", "/sigs/existing", ACCESS, SECRET, kind=kind))
    assert got.status_int == 200 and got.body == b"secret!"


def tamper_header(request: AWSRequest, name: str, value: str) -> AWSRequest:
    request.headers[name] = value
    return request


@pytest.mark.parametrize("kind", ["v4", "v4-query", "v2", "v2-query"])
@pytest.mark.parametrize("change", ["path", "signature", "access", "secret"])
def test_tampered_signatures_refused(stack, bucket: str, kind: str, change: str) -> None:
    request = sign("GET", "/sigs/existing", "AKIDNOBODY" if change == "access" else ACCESS,
                   "wrong" if change == "secret" else SECRET, kind=kind)
    if change == "path":
        request.url = request.url.replace("/sigs/existing", "/sigs/other")
    elif change == "signature":
        if kind.endswith("query"):
            name = "X-Amz-Signature=" if kind == "v4-query" else "Signature="
            start = request.url.index(name) + len(name)
            flipped = "0" if request.url[start] != "0" else "1"
            request.url = request.url[:start] + flipped + request.url[start + 1:]
        else:
            value = request.headers["Authorization"]
            flipped = "A" if value[-2] != "A" else "B"
            request.headers["Authorization"] = value[:-2] + flipped + value[-1]
    got = send(stack.app, request)
    assert got.status_int == 403, got.body
    assert error_code(got.body) == "SignatureDoesNotMatch"
    assert b"secret!" not in got.body


def test_signed_header_changed_is_refused(stack, bucket: str) -> None:
    request = sign("GET", "/sigs/existing", ACCESS, SECRET, headers={"Range": "bytes=0-1"})
    got = send(stack.app, tamper_header(request, "Range", "bytes=0-6"))
    assert got.status_int == 403 and error_code(got.body) == "SignatureDoesNotMatch"


def test_presigned_url_expiry(stack, bucket: str) -> None:
    for kind in ("v4-query", "v2-query"):
        request = sign("GET", "/sigs/existing", ACCESS, SECRET, kind=kind, expires_s=60)
        assert send(stack.app, request).status_int == 200
        stack.clock[0] = 120            # two minutes later
        got = send(stack.app, request)
        stack.clock[0] = 0
        assert got.status_int == 403 and error_code(got.body) == "AccessDenied"
        assert b"expired" in got.body and b"secret!" not in got.body


def test_presigned_expiry_longer_than_a_week_refused(stack, bucket: str) -> None:
    request = sign("GET", "/sigs/existing", ACCESS, SECRET, kind="v4-query",
                   expires_s=604801)
    got = send(stack.app, request)
    assert got.status_int == 400
    assert error_code(got.body) == "AuthorizationQueryParametersError"


@pytest.mark.parametrize("kind", ["v4", "v2"])
@pytest.mark.parametrize("offset_s", [-16 * 60, 16 * 60])
def test_clock_skew_refused(stack, bucket: str, kind: str, offset_s: int) -> None:
    request = sign("GET", "/sigs/existing", ACCESS, SECRET, kind=kind)
    stack.clock[0] = offset_s            # the request replayed later, or a skewed client
    got = send(stack.app, request)
    assert got.status_int == 403 and error_code(got.body) == "RequestTimeTooSkewed"
    stack.clock[0] = 14 * 60 if offset_s > 0 else -14 * 60
    assert send(stack.app, request).status_int == 200


def test_wrong_region_is_malformed(stack, bucket: str) -> None:
    request = AWSRequest(method="GET", url="http://s3.test/sigs/existing")
    S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", "eu-west-1").add_auth(request)
    got = send(stack.app, request)
    assert got.status_int == 400 and error_code(got.body) == "AuthorizationHeaderMalformed"


def test_unknown_access_key_and_other_project(stack, bucket: str) -> None:
    got = send(stack.app, sign("GET", "/sigs/existing", "AKIDNOBODY", "x"))
    assert got.status_int == 403
    # bob signs correctly, but his bucket namespace is his own project's account
    from tests.unit.proxy.middleware.s3api.conftest import OTHER_SECRET
    got = send(stack.app, sign("GET", "/sigs/existing", OTHER_ACCESS, OTHER_SECRET))
    assert got.status_int == 404 and error_code(got.body) == "NoSuchBucket"
    # ...and naming alice's account explicitly is refused by her container's (empty) ACL
    got = send(stack.app, sign("GET", "/projalice:sigs/existing", OTHER_ACCESS, OTHER_SECRET))
    assert got.status_int == 403 and error_code(got.body) == "AccessDenied"
    assert b"secret!" not in got.body


def test_signed_payload_hash_checked(stack, bucket: str) -> None:
    request = sign("PUT", "/sigs/payload", ACCESS, SECRET, body=b"good body")
    request.data = b"evil body"          # same length, different bytes
    got = send(stack.app, request)
    assert got.status_int == 400 and error_code(got.body) == "XAmzContentSHA256Mismatch"
    assert send(stack.app, sign("GET", "/sigs/payload", ACCESS, SECRET)).status_int == 404
    assert send(stack.app, sign("PUT", "/sigs/payload", ACCESS, SECRET,
                                body=b"good body")).status_int == 200


def test_unsigned_payload_allowed(stack, bucket: str) -> None:
    class Unsigned(S3SigV4Auth):
        def payload(self, request):  # noqa: ANN001, ANN201
            return sigv4.UNSIGNED_PAYLOAD
    request = AWSRequest(method="PUT", url="http://s3.test/sigs/unsigned", data=b"free")
    Unsigned(Credentials(ACCESS, SECRET), "s3", REGION).add_auth(request)
    assert send(stack.app, request).status_int == 200
    got = send(stack.app, sign("GET", "/sigs/unsigned", ACCESS, SECRET))
    assert got.body == b"free"


def test_missing_content_sha256_header_refused(stack, bucket: str) -> None:
    request = sign("GET", "/sigs/existing", ACCESS, SECRET)
    env = environ_of(request)
    del env["HTTP_X_AMZ_CONTENT_SHA256"]
    from webob import Request
    got = Request(env).get_response(stack.app)
    assert got.status_int == 400 and error_code(got.body) == "InvalidRequest"


# ---- aws-chunked uploads through the middleware -----------------------------------------------

def chunked_request(data: bytes, chunk_bytes: int, tamper: str = "") -> AWSRequest:
    """A STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT: seed signed by botocore, chunks by the spec."""
    chunks = [data[i:i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
    signature_count = len(chunks) + 1
    header_bytes = sum(len(f"{len(c):x};chunk-signature=".encode()) + 64 + 4 + len(c)
                       for c in [*chunks, b""])
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length":
               str(len(data)), "Content-Length": str(header_bytes)}

    class Streaming(S3SigV4Auth):
        def payload(self, request):  # noqa: ANN001, ANN201
            return sigv4.STREAMING_PAYLOAD
    request = AWSRequest(method="PUT", url="http://s3.test/sigs/chunked", headers=headers)
    Streaming(Credentials(ACCESS, SECRET), "s3", REGION).add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    key = derive_v4_signing_key(SECRET, amz_date[:8], REGION, "s3")
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    previous, signatures = seed, []
    for chunk in [*chunks, b""]:
        previous = sign_v4(key, sigv4.chunk_string_to_sign(
            amz_date, scope, previous, hashlib.sha256(chunk).hexdigest()))
        signatures.append(previous)
    assert len(signatures) == signature_count
    if tamper == "chunk":
        chunks[-1] = bytes([chunks[-1][0] ^ 1]) + chunks[-1][1:]
    elif tamper == "final":
        signatures[-1] = "0" * 64
    request.data = aws_chunked(chunks, signatures)
    assert len(request.data) == header_bytes
    return request


def test_chunked_upload_stored_and_read_back(stack, bucket: str) -> None:
    data = bytes(range(256)) * 300          # 76800 bytes in 8 KiB chunks
    got = send(stack.app, chunked_request(data, 8192))
    assert got.status_int == 200, got.body
    assert got.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    read = send(stack.app, sign("GET", "/sigs/chunked", ACCESS, SECRET))
    assert read.body == data and "Content-Encoding" not in read.headers


@pytest.mark.parametrize("tamper", ["chunk", "final"])
def test_chunked_upload_with_bad_chunk_signature_not_stored(stack, bucket: str,
                                                            tamper: str) -> None:
    send(stack.app, sign("DELETE", "/sigs/chunked", ACCESS, SECRET))
    got = send(stack.app, chunked_request(b"x" * 20000, 4096, tamper))
    assert got.status_int == 403 and error_code(got.body) == "SignatureDoesNotMatch"
    assert send(stack.app, sign("HEAD", "/sigs/chunked", ACCESS, SECRET)).status_int == 404


def test_swift_api_untouched(stack, bucket: str) -> None:
    got = swift(stack.app, "/v1/AUTH_projalice/sigs/existing", token=f"token-{ACCESS}")
    assert got.status_int == 200 and got.body == b"secret!"
    assert swift(stack.app, "/v1/AUTH_projalice/sigs/existing").status_int == 401
