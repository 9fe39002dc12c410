"""Readiness probes for scripts/services.sh, standard library only (runs before any venv exists).

    python3 probe.py kafka PORT   -> a Kafka Metadata request (v4) answered with >= 1 broker
    python3 probe.py http PORT    -> _cluster/health is yellow or green; prints distribution/version
    python3 probe.py port PORT    -> something accepts TCP connections on 127.0.0.1:PORT

Exit code 0 means ready; the one-line summary goes to stdout, the reason for "not ready" to stderr.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import urllib.error
import urllib.request

HOST = "127.0.0.1"
TIMEOUT_S = 3.0


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return data


def kafka_metadata(port: int) -> str:
    """Sends MetadataRequest v4 (all topics) and returns a summary of the brokers and controller."""
    client_id = b"clonewatch-probe"
    header = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id
    body = struct.pack(">ib", -1, 0)  # topics = null (all), allow_auto_topic_creation = false
    payload = header + body
    with socket.create_connection((HOST, port), timeout=TIMEOUT_S) as sock:
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        resp = _read_exact(sock, size)
    correlation_id, _throttle, n_brokers = struct.unpack_from(">iii", resp, 0)
    if correlation_id != 7:
        raise ValueError(f"unexpected correlation id {correlation_id}")
    off = 12
    brokers = []
    for _ in range(n_brokers):
        (node_id,) = struct.unpack_from(">i", resp, off)
        off += 4
        (hlen,) = struct.unpack_from(">h", resp, off)
        off += 2
        host = resp[off : off + hlen].decode()
        off += hlen
        (bport, rlen) = struct.unpack_from(">ih", resp, off)
        off += 6 + max(rlen, 0)
        brokers.append(f"{node_id}@{host}:{bport}")
    (clen,) = struct.unpack_from(">h", resp, off)
    off += 2
    cluster_id = resp[off : off + clen].decode() if clen >= 0 else None
    off += max(clen, 0)
    (controller,) = struct.unpack_from(">i", resp, off)
    if not brokers:
        raise ValueError("metadata lists no broker yet")
    return f"kafka cluster {cluster_id} brokers {','.join(brokers)} controller {controller}"


def http_health(port: int) -> str:
    """Returns distribution, version and health status when the cluster is yellow or green.

    The version comes from _nodes: the integ-test Elasticsearch has no "GET /" (rest-root module).
    """
    base = f"http://{HOST}:{port}"
    url = base + "/_cluster/health?wait_for_status=yellow&timeout=2s"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S + 2) as resp:  # noqa: S310 (loopback URL built here)
            health = json.load(resp)
            product = resp.headers.get("X-elastic-product")
    except urllib.error.HTTPError as exc:  # 408 while still red
        raise ValueError(f"cluster health not ready (HTTP {exc.code})") from exc
    status = health.get("status")
    if status not in ("yellow", "green"):
        raise ValueError(f"cluster health is {status}")
    url = base + "/_nodes/_local?filter_path=nodes.*.version"
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:  # noqa: S310 (loopback URL built here)
        nodes = json.load(resp).get("nodes", {})
    versions = ",".join(sorted({str(n.get("version")) for n in nodes.values()}))
    dist = "elasticsearch" if product == "Elasticsearch" else "opensearch"
    return f"{dist} {versions} cluster {health.get('cluster_name')} status {status}"


def port_open(port: int) -> str:
    with socket.create_connection((HOST, port), timeout=TIMEOUT_S):
        return f"port {port} open"


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("kafka", "http", "port"):
        print(__doc__, file=sys.stderr)
        return 2
    probe = {"kafka": kafka_metadata, "http": http_health, "port": port_open}[argv[1]]
    try:
        print(probe(int(argv[2])))
    except (OSError, ValueError, struct.error, json.JSONDecodeError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
