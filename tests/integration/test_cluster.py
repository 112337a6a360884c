#!/usr/bin/python3
"""test_cluster.py - three real tranched processes in a C-Raft cluster
(PROTOCOL.md sections 7 and 8), under load, through faults.

`tranchectl cluster init` makes three data directories on loopback ports;
each node runs `tranched --datadir DIR`.  Client threads submit transfers
and account.opens to the leader, following -32005 not_leader to the address
it names and resubmitting the same bytes whenever an answer was lost or its
outcome was unknown (section 2 idempotency).  Every acknowledged receipt is
recorded.  While the load runs, the test:
  1. kills the leader with SIGKILL and restarts it, CLUSTER_KILLS times;
  2. stops the leader with SIGSTOP past the election timeout, then SIGCONT;
  3. cuts a follower off by SIGSTOP of it, then lets it catch up;
  4. fills the disk of a follower (its directory is on a small tmpfs the
     test mounts; skipped where it cannot), then frees it: it catches up;
  5. runs a follower under faketime, 10 minutes ahead, and kills the leader
     so that it may lead: entry times still never decrease;
  6. wipes a follower's data (journal, raft log, checkpoint: only its config
     and key stay) and restarts it: it rebuilds genesis and catches up.
After each fault a leader must take writes again; the time from the kill to
the first receipt from a new leader is printed.  At the end, on every node:
every acknowledged txid is present with the same seq and hash; no txid is
in the journal twice; the heads (size, hash) and Merkle roots are
identical; every asset's holders sum to its issued units; holdings are
identical; node.status has the section 8 cluster object; and after a clean
stop `tranchectl verify` passes on every data directory.
Seeded (TRANCHE_TEST_SEED); CLUSTER_KILLS (default 2) and CLUSTER_LOAD_S
(default 4 per phase) make a longer run.  Prints TAP.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402
from clusterlib import (T, SANITIZED, Cluster, Shared, fill_disk, final_checks, reaches,  # noqa: E402
                        scenario_failed, setup, start_load, stop_and_audit, stop_load, wait_acks_after)

tc.binaries_or_skip(T)
KILLS = int(os.environ.get("CLUSTER_KILLS", "2"))
LOAD_S = float(os.environ.get("CLUSTER_LOAD_S", "4"))
NODES = 3
SNAPSHOT_EVERY = 256  # raft snapshots every this many batches (the default is 4096)
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"  # the wall clock only: raft's timers stay true


def disk_full(cluster, sh):
    """Fills the disk of the node on the small tmpfs; the others go on; once
    there is room again it catches up (restarted if it had to stop)."""
    if not cluster.mounted:
        T.comment("disk full: skipped (cannot mount a tmpfs here)")
        return
    nd = cluster.nodes[-1]
    if cluster.leader() is nd:
        subprocess.run([os.environ["TRANCHECTL"], "cluster", "transfer", "--datadir", nd.datadir],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    filler = fill_disk(cluster.small_disk)
    T.check(wait_acks_after(sh, time.monotonic(), not_from=nd.id) is not None,
            "writes go on while a follower's disk is full")
    time.sleep(LOAD_S / 2)
    os.unlink(filler)
    target = cluster.leader().call("ledger.head")["size"]
    caught_up = reaches(nd, target, 15)
    if not caught_up:
        T.comment("the node with the full disk did not resume by itself; restarting it\n" + nd.logs(8))
        nd.stop()
        nd.start()
        try:
            nd.wait_up(timeout=30)
        except RuntimeError as e:
            # C-Raft 0.15 may leave a raft log it cannot load after a failed write; the node says so
            # and how to recover (the README's wipe-and-rejoin), which must then work.
            T.check("cannot start raft" in str(e) and "rejoins from the leader's snapshot" in str(e),
                    "a node whose raft log the full disk damaged refuses to start, saying how to recover", str(e))
            T.comment("C-Raft lost the full node's log; wiping it to rejoin:\n" + str(e)[-600:])
            wipe_but_identity(nd)
            nd.start()
            nd.wait_up(timeout=30)
        caught_up = reaches(nd, target, 30)
    T.check(caught_up, "the follower whose disk was full catches up once there is room", nd.logs(20))
    log = nd.logs(2000)
    T.comment("the full node's journal commits: %s" % (
        "failed on tr-journal, and the batches were applied again on tr-seq" if "the group commit of" in log else
        "did not fail (raft's own log write failed first)"))


def wipe_but_identity(nd):
    """The operator's recovery of a node (README, A cluster): everything but tranche.conf and node.key."""
    for name in os.listdir(nd.datadir):
        if name not in ("tranche.conf", "node.key"):
            p = os.path.join(nd.datadir, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)


def clock_skew(cluster, sh):
    """Restarts a follower under libfaketime, its clock 10 minutes ahead, and
    makes it likely to lead: entry times never decrease (checked with the
    chain at the end) and the cluster goes on."""
    ld = cluster.leader()
    nd = next(n for n in cluster.nodes if n is not ld)
    if not os.path.exists(FAKETIME_LIB) or SANITIZED:
        T.comment("clock skew: skipped (%s)" % ("no libfaketime" if not SANITIZED
                                                 else "libfaketime is not preloaded under a sanitizer runtime"))
        return
    nd.stop()
    nd.start(env={"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+600s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    nd.wait_up()
    ld.kill()
    T.check(wait_acks_after(sh, time.monotonic(), not_from=ld.id) is not None,
            "writes go on with one node's clock 10 minutes ahead (faketime)")
    ld.start()
    ld.wait_up()
    time.sleep(LOAD_S / 2)
    nd.stop()
    nd.start()
    nd.wait_up()


def check_status(cluster):
    ld = cluster.leader()
    st = ld.status()["cluster"]
    T.check(all(k in st for k in ("id", "role", "term", "leader", "commit", "applied", "nodes")),
            "node.status has the section 8 cluster object", st)
    T.check(st["leader"] == ld.id and st["role"] == "leader", "the leader names itself")
    T.check(sorted(n["id"] for n in st["nodes"]) == [1, 2, 3] and
            all(set(("id", "raft", "rpc", "role")) <= set(n) for n in st["nodes"]),
            "cluster.nodes lists every node with raft, rpc and role", st["nodes"])
    follower = next(n for n in cluster.nodes if n is not ld and n.alive())
    fs = follower.status()["cluster"]
    T.check(fs["role"] == "follower" and fs["leader"] == ld.id, "a follower names the leader", fs)
    b = tc.tx_bytes(cluster.tx("account.open", cluster.admin, account=tc.Key().pk, roles=["investor"],
                               jurisdiction="US", kyc=True))
    with follower.connect() as c:
        r = c.result_or_error("tx.submit", {"tx": b.decode(), "sig": tc.sign_tx(b, cluster.admin)})
    T.check(isinstance(r, dict) and r.get("code") == -32005 and (r.get("data") or {}).get("leader") == ld.rpc,
            "a follower answers tx.submit with -32005 naming the leader's RPC address", r)
    h = follower.call("ledger.head")
    T.check(isinstance(h.get("size"), int) and h["size"] >= 1, "a follower serves queries (ledger.head)")
    acct = tc.Key().pk
    r = subprocess.run([os.environ["TRANCHECTL"], "account", "open", "--key", cluster.admin_path, "--account", acct,
                        "--roles", "investor", "--jurisdiction", "US", "--kyc", "true", "--rpc", follower.rpc, "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    T.check(r.returncode == 0 and b'"seq"' in r.stdout and ld.rpc.encode() in r.stderr,
            "tranchectl pointed at a follower follows not_leader to the leader and prints the receipt",
            (r.returncode, r.stdout[-300:], r.stderr[-500:]))
    r = subprocess.run([os.environ["TRANCHECTL"], "cluster", "status", "--rpc", follower.rpc],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    T.check(r.returncode == 0 and b"leader" in r.stdout, "tranchectl cluster status shows the cluster",
            (r.returncode, r.stdout[-500:], r.stderr[-300:]))


def main():
    cluster = Cluster(NODES, small_disk=True, snapshot_every=SNAPSHOT_EVERY)
    try:
        T.check(re.search(r"[0-9a-f]{64}", cluster.init_out) is not None, "cluster init prints the admin key")
        t0 = time.monotonic()
        ld = cluster.start_all()
        T.comment("first leader: node %d after %.2fs" % (ld.id, time.monotonic() - t0))
        sh = Shared()
        pairs = setup(cluster, sh)
        check_status(cluster)
        threads = start_load(cluster, sh, pairs)
        try:
            time.sleep(LOAD_S)
            failovers = []
            for k in range(KILLS):
                ld = cluster.leader()
                t_kill = time.monotonic()
                ld.kill()
                took = wait_acks_after(sh, t_kill, not_from=ld.id)
                failovers.append(took)
                T.check(took is not None, "kill -9 of the leader (node %d, round %d): writes resume" % (ld.id, k + 1))
                time.sleep(LOAD_S / 2)
                ld.start()
                ld.wait_up()
                time.sleep(LOAD_S / 2)
            T.comment("failover (kill -9 of the leader to the next receipt), s: %s"
                      % ", ".join("%.2f" % f if f is not None else "none" for f in failovers))
            ld = cluster.leader()
            t_stop = time.monotonic()
            ld.kill(signal.SIGSTOP)
            took = wait_acks_after(sh, t_stop, not_from=ld.id)
            T.check(took is not None, "SIGSTOP of the leader (node %d): another takes over" % ld.id)
            time.sleep(1.0)
            ld.kill(signal.SIGCONT)
            time.sleep(LOAD_S / 2)
            ld = cluster.leader()
            f = next(n for n in cluster.nodes if n is not ld)
            f.kill(signal.SIGSTOP)
            time.sleep(2.5)
            f.kill(signal.SIGCONT)
            T.check(wait_acks_after(sh, time.monotonic()) is not None, "writes go on while a follower was cut off")
            disk_full(cluster, sh)
            clock_skew(cluster, sh)
            ld = cluster.leader()
            f = next(n for n in cluster.nodes if n is not ld)
            f.stop()
            wipe_but_identity(f)
            f.start()
            f.wait_up(timeout=30)
            time.sleep(LOAD_S)
            with open(f.log_path, "rb") as lf:
                rejoin_log = lf.read().decode("utf-8", "replace")
            T.check("snapshot installed" in rejoin_log and "re-created the cluster's genesis entry" in rejoin_log,
                    "the wiped node re-created genesis and rejoined by a snapshot", f.logs(20))
        finally:
            stop_load(sh, threads)
        T.comment("acknowledged %d txs; %d not_leader answers followed; %d answers lost or unknown, resubmitted"
                  % (len(sh.acked), sh.not_leader, sh.unknown))
        T.check(len(sh.acked) > 50, "the load made progress (%d receipts)" % len(sh.acked))
        final_checks(cluster, sh)
        stop_and_audit(cluster)
    except Exception:  # noqa: BLE001
        scenario_failed(cluster)
    finally:
        cluster.cleanup()
    T.done()


main()
