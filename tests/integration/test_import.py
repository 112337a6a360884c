#!/usr/bin/env python3
"""`tranchectl import`: bulk submission of signed {tx, sig} lines (issue 6)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)


def signed_line(node, tx):
    b = tc.tx_bytes(tx)
    return json.dumps({"tx": b.decode(), "sig": tc.sign_tx(b, node.admin)})


with tc.Node() as node:
    node.init()
    node.start()
    keys = [tc.Key() for _ in range(500)]
    good = [signed_line(node, node.tx("account.open", node.admin, account=k.pk, roles=["investor"],
                                      jurisdiction="GB", kyc=True)) for k in keys]
    path = os.path.join(node.tmp, "good.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(good) + "\n")
    rpc = ["--rpc", "127.0.0.1:%d" % node.port]
    r = node.ctl("import", path, *rpc)
    out = r.stdout.decode()
    T.eq(r.returncode, 0, "a clean file imports with exit 0")
    T.check("500 accepted" in out, "summary counts 500 accepted", out)
    T.eq(node.head()["size"], 501, "the journal holds every line, in file order")
    entries = node.all_entries()
    T.check([e["tx"] for e in entries[1:]] == [json.loads(l)["tx"] for l in good],
            "entries are in the file's order")

    again = os.path.join(node.tmp, "mixed.jsonl")
    refused = signed_line(node, node.tx("account.open", node.admin, account=keys[0].pk, roles=["investor"],
                                        jurisdiction="GB", kyc=True))
    with open(again, "w") as f:
        f.write(good[0] + "\n\n" + refused + "\n" + '{"tx": 1}' + "\n" + good[1] + "\n")
    r = node.ctl("import", again, *rpc)
    out, err = r.stdout.decode(), r.stderr.decode()
    T.eq(r.returncode, 1, "refused or malformed lines make exit 1")
    T.check("2 duplicate" in out and "1 refused" in out and "1 malformed" in out, "summary", out)
    T.check("line 3: refused: exists" in err, "the refusal names its line and reason", err)
    T.check("line 4:" in err, "the malformed line is named", err)
    T.eq(node.head()["size"], 501, "nothing new appended")
    T.eq(node.stop(), 0, "clean stop")

T.done()
