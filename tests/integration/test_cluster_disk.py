#!/usr/bin/python3
"""test_cluster_disk.py - a cluster node whose journal commits fail under
load (PROTOCOL.md section 8; journal_stage.h, replica.c).

A cluster node commits the batches raft committed on tr-journal, behind
tr-seq.  The cluster has committed them, so a failed commit cannot refuse
them: the node's memory is rebuilt and the failed batches are applied again
on tr-seq until they are durable.  Three real tranched processes, the last
node's directory on a small tmpfs (clusterlib); under the load of
clusterlib's client threads:
  1. the follower on the tmpfs: its disk fills to the last page, writes go
     on elsewhere, its journal commits fail (its log says so; the fill is
     tried again up to three times when raft's own log write fails first),
     then the disk is freed and it catches up;
  2. the same node leading: its disk fills; its clients hear that their tx
     is not written on this node, or find another leader; writes go on.
At the end, on every node: every acknowledged tx with its seq and hash, no
txid twice, identical journals, Merkle trees and holdings, units conserved,
a clean stop and `tranchectl verify`.  Skipped where no tmpfs can be
mounted.  Prints TAP.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402
from clusterlib import (T, Cluster, Shared, converge, fill_disk, final_checks, reaches,  # noqa: E402
                        scenario_failed, setup, start_load, stop_and_audit, stop_load, wait_acks_after)

tc.binaries_or_skip(T)
FAILED_COMMIT = "the group commit of"  # sequencer.c / journal_stage.c: a failed journal commit


def log_since(nd, offset):
    with open(nd.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def lead_elsewhere(cluster, nd):
    if cluster.leader() is nd:
        subprocess.run([os.environ["TRANCHECTL"], "cluster", "transfer", "--datadir", nd.datadir],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
        cluster.leader(exclude=(nd,))


def follower_commits_fail(cluster, sh):
    nd = cluster.nodes[-1]
    seen = False
    for attempt in range(3):
        lead_elsewhere(cluster, nd)
        offset = os.path.getsize(nd.log_path)
        filler = fill_disk(cluster.small_disk)
        T.check(wait_acks_after(sh, time.monotonic(), not_from=nd.id) is not None,
                "follower disk full (attempt %d): writes go on" % (attempt + 1))
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and FAILED_COMMIT not in log_since(nd, offset):
            time.sleep(0.1)
        os.unlink(filler)
        seen = FAILED_COMMIT in log_since(nd, offset)
        if seen:
            break
        T.comment("attempt %d: raft's own log write failed first; filling again" % (attempt + 1))
    T.check(seen, "the full follower's journal commits fail (its log says so)", nd.logs(12))
    target = cluster.leader().call("ledger.head")["size"]
    T.check(reaches(nd, target, 30), "with room again the follower applies the failed batches and catches up",
            nd.logs(20))


def leader_commits_fail(cluster, sh):
    nd = cluster.nodes[-1]
    for _ in range(3):  # a transfer is raft's best effort: the target can lose its election; ask again
        ld = cluster.leader()
        if ld is nd:
            break
        subprocess.run([os.environ["TRANCHECTL"], "cluster", "transfer", "--datadir", ld.datadir, "--to",
                        str(nd.id)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cluster.leader(timeout=2) is not nd:
            time.sleep(0.2)
    if cluster.leader() is not nd:
        T.comment("leader disk full: skipped (node %d did not take the lead)" % nd.id)
        return
    T.check(wait_acks_after(sh, time.monotonic()) is not None, "node %d leads and takes writes" % nd.id)
    offset = os.path.getsize(nd.log_path)
    filler = fill_disk(cluster.small_disk)
    T.check(wait_acks_after(sh, time.monotonic(), timeout=30) is not None,
            "leader disk full: writes go on (on another leader once it hands over, or here)")
    time.sleep(1)
    os.unlink(filler)
    T.comment("the full leader's log: %s" % ("its journal commits failed" if FAILED_COMMIT in log_since(nd, offset)
                                            else "raft's own log write failed first"))
    target = cluster.leader().call("ledger.head")["size"]
    T.check(reaches(nd, target, 30), "with room again the old leader catches up", nd.logs(20))


def main():
    cluster = Cluster(3, small_disk=True)
    try:
        if not cluster.mounted:
            T.skip_all("cannot mount a tmpfs here")
        cluster.start_all()
        sh = Shared()
        pairs = setup(cluster, sh)
        threads = start_load(cluster, sh, pairs)
        try:
            time.sleep(1)
            T.section("follower", follower_commits_fail, cluster, sh)
            T.section("leader", leader_commits_fail, cluster, sh)
        finally:
            stop_load(sh, threads)
        converge(cluster, 60)
        final_checks(cluster, sh)
        stop_and_audit(cluster)
    except Exception:
        scenario_failed(cluster)
        raise
    finally:
        cluster.cleanup()
    T.done()


if __name__ == "__main__":
    main()
