#!/usr/bin/python3
"""failover-bench.py - kill -9 the leader of a 3-node cluster again and again
under load, and time each failover: from the kill to another node leading
and taking writes (node.status polled every 10 ms), and to the first receipt
from another node (the clients follow -32005 to the leader it names,
retrying every 50 ms while none is known).  Prints each and p50/p90/p99/max.

    TRANCHED=build/daemon/tranched TRANCHECTL=build/tools/tranchectl \\
        PYTHONPATH=tools/python /usr/bin/python3 tools/bench/failover-bench.py [KILLS] [ELECTION_TIMEOUT_MS]

Defaults: 10 kills, the nodes' default election timeout.  A figure, never a
pass or fail; the nodes and the clients share this machine's cores.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import clusterlib as cl  # noqa: E402


def fmt(t):
    return "%.3f s" % t if t is not None else "none in 20 s"


def time_to_ready(cluster, killed, t0, timeout=20):
    """Seconds from t0 until another node leads and takes writes (node.status
    polled every 10 ms), or None."""
    others = [n for n in cluster.nodes if n is not killed]
    while time.monotonic() < t0 + timeout:
        for nd in others:
            try:
                cl_ = nd.call("node.status", timeout=1).get("cluster", {})
            except Exception:  # noqa: BLE001 - a node may be busy
                continue
            if cl_.get("role") == "leader" and cl_.get("taking_writes"):
                return time.monotonic() - t0
        time.sleep(0.01)
    return None


def first_receipt(sh, t0, killed, timeout=20):
    """Seconds from t0 to the first receipt another node sent after it (the
    clients log every receipt with its time), or None."""
    while time.monotonic() < t0 + timeout:
        with sh.lock:
            times = [t for (t, node, _, _) in sh.log if t > t0 and node != killed.id]
        if times:
            return min(times) - t0
        time.sleep(0.01)
    return None


def pcts(values):
    done = sorted(t for t in values if t is not None)
    if not done:
        return "none"

    def pct(p):
        return done[min(len(done) - 1, int(p * len(done)))]
    return "p50 %.3f s  p90 %.3f s  p99 %.3f s  max %.3f s%s" % (
        pct(0.5), pct(0.9), pct(0.99), done[-1],
        "" if len(done) == len(values) else "  (%d none)" % (len(values) - len(done)))


def main():
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    election_ms = int(sys.argv[2]) if len(sys.argv) > 2 else None
    cluster = cl.Cluster(3)
    if election_ms:
        for nd in cluster.nodes:
            with open(os.path.join(nd.datadir, "tranche.conf"), "a") as f:
                f.write("cluster_election_timeout = %d\n" % election_ms)
    times, readies = [], []
    try:
        cluster.start_all()
        sh = cl.Shared()
        pairs = cl.setup(cluster, sh)
        threads = cl.start_load(cluster, sh, pairs)
        try:
            time.sleep(2)
            for k in range(kills):
                ld = cluster.leader()
                t0 = time.monotonic()
                ld.kill()
                ready = time_to_ready(cluster, ld, t0)
                took = first_receipt(sh, t0, ld)
                times.append(took)
                readies.append(ready)
                print("kill %d: node %d; a new leader took writes after %s, the next receipt came after %s" %
                      (k + 1, ld.id, fmt(ready), fmt(took)), flush=True)
                ld.start()
                ld.wait_up()
                time.sleep(1.5)
        finally:
            cl.stop_load(sh, threads)
    finally:
        cluster.cleanup()
    label = "%d ms" % election_ms if election_ms else "the default"
    print("failover over %d kills, election timeout %s:" % (len(times), label))
    print("  kill -9 to a new leader taking writes:  %s" % pcts(readies))
    print("  kill -9 to the next receipt:            %s" % pcts(times))


main()
