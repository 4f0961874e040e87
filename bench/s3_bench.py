"""The S3 layer's overhead: PutObject/GetObject through boto3 against the same PUT/GET through
the Swift API (http.client, keep-alive), on the same all-in-one cluster in the same run.

Starts `python -m common.aio` in a fresh temporary directory (proxy on --port, identity on the
port after it, storage from --storage-port-base), gets EC2 credentials of test:tester from
identity's API and a Swift token from /auth/v1.0, then for each object size (4 KiB, 1 MiB)
runs rounds that alternate a block of Swift operations and a block of S3 operations (so drift
of a shared machine hits both alike): PUTs of fresh objects, then GETs of them. One client, one
request at a time, so the figures are latencies. Stops the cluster at the end (also on Ctrl-C).

stdout: one JSON line with, per row (put_4k, get_4k, put_1m, get_1m), ops/s, p50 and p99 in ms
and the proxy's CPU ms per operation for three clients: `swift` (raw http.client), `swiftclient`
(python-swiftclient, the Swift API's own client library) and `s3` (boto3); and three overheads
(the target is under 15):
- `s3_overhead_pct` = (Swift ops/s / S3 ops/s - 1) * 100, boto3 against raw HTTP: boto3's own
  client work (signing, XML, ~2 ms per call) counts, as it does for a user;
- `s3_vs_swiftclient_pct`: the same against python-swiftclient, client library to library;
- `proxy_cpu_overhead_pct`: the proxy's CPU per boto3 S3 operation against per raw Swift
  operation (a slow client leaves the proxy's caches cold between requests, which counts here);
- `s3_layer_overhead_pct`: `s3_signed` (the same signed S3 requests as boto3's, made with
  botocore's signer over raw http.client) against raw Swift: the S3 layer's own cost,
  signature checks and payload hashing included, with the client's cost taken out.
Progress goes to stderr.

    PYTHONPATH=. python bench/s3_bench.py --quick       # smoke run (~1 min)
    PYTHONPATH=. python bench/s3_bench.py --ops 500 --rounds 4
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"4k": 4096, "1m": 1024 * 1024}
REGION = "us-east-1"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def aio(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-m", "common.aio", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ringstack-aio {' '.join(args)}: {result.stdout}{result.stderr}")
    return result


def identity_json(url: str, body: Any, token: str | None = None) -> tuple[dict[str, str], Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(response.headers), json.loads(response.read())


def ec2_credentials(identity_url: str) -> tuple[str, str]:
    headers, body = identity_json(f"{identity_url}/v3/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "tester", "domain": {"id": "default"}, "password": "testing"}}},
        "scope": {"project": {"name": "test", "domain": {"id": "default"}}}}})
    token = headers["X-Subject-Token"]
    user_id = body["token"]["user"]["id"]
    _, created = identity_json(f"{identity_url}/v3/users/{user_id}/credentials/OS-EC2",
                               {"tenant_id": body["token"]["project"]["id"]}, token)
    return created["credential"]["access"], created["credential"]["secret"]


def swift_auth(proxy_port: int) -> tuple[str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{proxy_port}/auth/v1.0", headers={
        "X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
    with urllib.request.urlopen(request, timeout=30) as response:
        url = response.headers["X-Storage-Url"]
        return url.split(str(proxy_port), 1)[1], response.headers["X-Auth-Token"]


class SignedS3Client:
    """S3 PUT/GET signed by botocore's SigV4 signer, sent over one keep-alive http.client
    connection: the same requests boto3 makes, without boto3's per-call client work, so the
    difference to `SwiftClient` is the S3 layer's cost on the server."""

    def __init__(self, port: int, access: str, secret: str):
        from botocore.auth import S3SigV4Auth
        from botocore.credentials import Credentials

        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.endpoint = f"http://127.0.0.1:{port}"
        self.signer = S3SigV4Auth(Credentials(access, secret), "s3", REGION)

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=self.endpoint + path, data=body or b"")
        self.signer.add_auth(request)
        headers = dict(request.headers.items())
        if body is not None:
            headers["Content-Length"] = str(len(body))
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"S3 {method} {path}: {response.status} {data[:200]!r}")
        return data


class SwiftClient:
    """PUT/GET over one keep-alive http.client connection."""

    def __init__(self, port: int, account_path: str, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.base = account_path
        self.token = token

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"X-Auth-Token": self.token}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        self.conn.request(method, self.base + path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"Swift {method} {path}: {response.status} {data[:200]!r}")
        return data


def proxy_cpu_s(data_dir: str) -> float:
    """CPU-seconds used so far by the cluster's proxy processes (the server and its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            if data_dir not in cmdline or " proxy " not in cmdline:
                continue
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def timed(operation: Callable[[int], Any], count: int, cpu: list[float],
          cpu_now: Callable[[], float]) -> list[float]:
    """Latencies of `count` calls; the proxy CPU they cost is appended to `cpu`."""
    latencies = []
    before = cpu_now()
    for index in range(count):
        start = time.perf_counter()
        operation(index)
        latencies.append(time.perf_counter() - start)
    cpu.append(cpu_now() - before)
    return latencies


def summary(latencies: list[float], cpu_s: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"ops_s": round(len(ordered) / sum(ordered), 1),
            "proxy_cpu_ms": round(sum(cpu_s) / len(ordered) * 1000, 3),
            "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
                            2)}


def pct_slower(reference_ops_s: float, measured_ops_s: float) -> float:
    return round((reference_ops_s / measured_ops_s - 1) * 100, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import boto3
    import swiftclient.client
    from botocore.config import Config as BotoConfig

    data_dir = tempfile.mkdtemp(prefix="s3bench-")
    identity_port = args.port + 1
    log(f"starting the aio cluster in {data_dir}")
    aio("start", "--detach", "--data-dir", data_dir, "--port", str(args.port),
        "--storage-port-base", str(args.storage_port_base), "--identity-port",
        str(identity_port), "--servers-only")   # no daemons' passes in the figures
    try:
        access, secret = ec2_credentials(f"http://127.0.0.1:{identity_port}")
        account_path, token = swift_auth(args.port)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{args.port}",
                          aws_access_key_id=access, aws_secret_access_key=secret,
                          region_name=REGION,
                          config=BotoConfig(s3={"addressing_style": "path"},
                                            retries={"max_attempts": 1}))
        swift = SwiftClient(args.port, account_path, token)
        library = swiftclient.client.Connection(
            preauthurl=f"http://127.0.0.1:{args.port}{account_path}", preauthtoken=token,
            retries=0)
        swift.request("PUT", "/bench-swift", b"")
        library.put_container("bench-swiftclient")
        s3.create_bucket(Bucket="bench-s3")
        signed = SignedS3Client(args.port, access, secret)
        apis = ("swift", "swiftclient", "s3", "s3_signed")
        cpu_now = lambda: proxy_cpu_s(data_dir)  # noqa: E731
        rows: dict[str, Any] = {}
        for size_name, size in SIZES.items():
            count = args.ops if size_name == "4k" else max(4, args.ops // 4)
            body = os.urandom(size)
            samples: dict[str, list[float]] = {f"{kind}_{api}": [] for kind in ("put", "get")
                                               for api in apis}
            cpu: dict[str, list[float]] = {key: [] for key in samples}
            for round_index in range(args.rounds):
                prefix = f"{size_name}-{round_index}-"
                log(f"{size_name}: round {round_index + 1}/{args.rounds}, {count} ops each")
                operations = {
                    "put_swift": lambda i, p=prefix, b=body: swift.request(
                        "PUT", f"/bench-swift/{p}{i}", b),
                    "put_swiftclient": lambda i, p=prefix, b=body: library.put_object(
                        "bench-swiftclient", f"{p}{i}", b),
                    "put_s3": lambda i, p=prefix, b=body: s3.put_object(
                        Bucket="bench-s3", Key=f"{p}{i}", Body=b),
                    "get_swift": lambda i, p=prefix: swift.request(
                        "GET", f"/bench-swift/{p}{i}"),
                    "get_swiftclient": lambda i, p=prefix: library.get_object(
                        "bench-swiftclient", f"{p}{i}"),
                    "get_s3": lambda i, p=prefix: s3.get_object(
                        Bucket="bench-s3", Key=f"{p}{i}")["Body"].read(),
                    "put_s3_signed": lambda i, p=prefix, b=body: signed.request(
                        "PUT", f"/bench-s3/signed-{p}{i}", b),
                    "get_s3_signed": lambda i, p=prefix: signed.request(
                        "GET", f"/bench-s3/signed-{p}{i}"),
                }
                for key, operation in operations.items():
                    samples[key] += timed(operation, count, cpu[key], cpu_now)
            for kind in ("put", "get"):
                row = {api: summary(samples[f"{kind}_{api}"], cpu[f"{kind}_{api}"])
                       for api in apis}
                row["s3_overhead_pct"] = pct_slower(row["swift"]["ops_s"], row["s3"]["ops_s"])
                row["s3_vs_swiftclient_pct"] = pct_slower(row["swiftclient"]["ops_s"],
                                                          row["s3"]["ops_s"])
                row["proxy_cpu_overhead_pct"] = round(
                    (row["s3"]["proxy_cpu_ms"] / row["swift"]["proxy_cpu_ms"] - 1) * 100, 1)
                row["s3_layer_overhead_pct"] = pct_slower(row["swift"]["ops_s"],
                                                          row["s3_signed"]["ops_s"])
                rows[f"{kind}_{size_name}"] = row
        return {"bench": "s3_overhead", "ops_per_round_4k": args.ops, "rounds": args.rounds,
                "target_overhead_pct": 15, "rows": rows}
    finally:
        log("stopping the cluster")
        subprocess.run([sys.executable, "-m", "common.aio", "stop", "--data-dir", data_dir],
                       cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                       timeout=120, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=200, help="4 KiB ops per round and API "
                        "(1 MiB rows use a quarter)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="40 ops, 2 rounds")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--storage-port-base", type=int, default=7300)
    args = parser.parse_args(argv)
    if args.quick:
        args.ops, args.rounds = 40, 2
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
