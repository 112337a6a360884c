#!/usr/bin/python3
"""failover-bench.py - kill -9 the leader of a 3-node cluster again and again
under load, and time each failover: from the kill to the first receipt from
another node (the clients follow -32005 to the leader it names, retrying
every 50 ms while none is known).  Prints each time and p50 / p90 / max.

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


def main():
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    election_ms = int(sys.argv[2]) if len(sys.argv) > 2 else None
    cluster = cl.Cluster(3)
    if election_ms:
        for nd in cluster.nodes:
            with open(os.path.join(nd.datadir, "tranche.conf"), "a") as f:
                f.write("cluster_election_timeout = %d\n" % election_ms)
    times = []
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
                took = cl.wait_acks_after(sh, t0, not_from=ld.id)
                times.append(took)
                print("kill %d: node %d, next receipt from another node after %s" %
                      (k + 1, ld.id, "%.3f s" % took if took is not None else "none in 20 s"), flush=True)
                ld.start()
                ld.wait_up()
                time.sleep(1.5)
        finally:
            cl.stop_load(sh, threads)
    finally:
        cluster.cleanup()
    done = sorted(t for t in times if t is not None)
    if done:
        def pct(p):
            return done[min(len(done) - 1, int(p * len(done)))]
        print("failover over %d kills (election timeout %s): p50 %.3f s  p90 %.3f s  max %.3f s%s" % (
            len(times), "%d ms" % election_ms if election_ms else "default", pct(0.5), pct(0.9), done[-1],
            "" if len(done) == len(times) else "  (%d without a receipt)" % (len(times) - len(done))))


main()
