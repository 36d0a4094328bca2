"""Ray's own TLS (RAY_USE_TLS) on a local multi-node cluster: three nodes on 127.0.0.1 whose
gRPC (GCS, raylets, workers) speaks TLS with a certificate from a CA made in the test. Every
node runs a task; the GCS port completes a TLS handshake for a client that trusts the CA and
refuses one that does not. Run in a subprocess: RAY_USE_TLS is read when Ray starts, and this
session's own Ray must stay as it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli_env, free_port, make_ca_and_cert

SCRIPT = r"""
import json, socket, ssl, sys
import ray
from ray.cluster_utils import Cluster

ca, gcs_port = sys.argv[1], int(sys.argv[2])
cluster = Cluster(initialize_head=True, head_node_args=dict(
    num_cpus=1, node_ip_address="127.0.0.1", gcs_server_port=gcs_port,
    include_dashboard=False))
for _ in range(2):
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
try:
    ray.init(address=cluster.address, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def where():
        return ray.get_runtime_context().get_node_id()

    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    seen = set()
    for _ in range(30):  # SPREAD until every node has run one
        seen |= set(ray.get([where.options(scheduling_strategy="SPREAD").remote()
                             for _ in range(6)]))
        if seen == nodes:
            break
    facts = {"nodes": len(nodes), "ran_on": len(seen), "node_ips": sorted(
        {n["NodeManagerAddress"] for n in ray.nodes()})}

    def handshake(ctx):
        with socket.create_connection(("127.0.0.1", gcs_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.version()

    trusting = ssl.create_default_context(cafile=ca)
    trusting.set_alpn_protocols(["h2"])
    facts["trusted_handshake"] = handshake(trusting)
    try:
        handshake(ssl.create_default_context())
        facts["untrusted_handshake"] = "accepted"
    except ssl.SSLCertVerificationError as e:
        facts["untrusted_handshake"] = "refused: " + e.verify_message
    print("FACTS " + json.dumps(facts), flush=True)
finally:
    ray.shutdown()
    cluster.shutdown()
"""


@pytest.mark.slow
def test_ray_tls_on_a_local_three_node_cluster(tmp_path: Path) -> None:
    ca, tls = make_ca_and_cert(tmp_path)
    env = cli_env(RAY_USE_TLS="1", RAY_TLS_SERVER_CERT=tls.cert, RAY_TLS_SERVER_KEY=tls.key,
                  RAY_TLS_CA_CERT=str(ca))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ca), str(free_port())],
                          capture_output=True, text=True, timeout=400, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    facts = json.loads(lines[-1][6:])
    assert facts["nodes"] == 3 and facts["ran_on"] == 3, facts
    assert facts["node_ips"] == ["127.0.0.1"], facts
    assert facts["trusted_handshake"] in ("TLSv1.2", "TLSv1.3"), facts
    assert facts["untrusted_handshake"].startswith("refused"), facts
