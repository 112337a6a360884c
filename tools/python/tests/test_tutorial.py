"""README.md's tutorial, run as written (every ```python block in order, in
one namespace) against a fresh node: documentation that cannot rot."""
import contextlib
import io
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def blocks():
    with open(os.path.join(HERE, "..", "README.md"), encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```$", f.read(), re.M | re.S)


def test_the_tutorial_runs(node, tmp_path, monkeypatch):
    code = blocks()
    assert len(code) >= 6
    monkeypatch.setenv("TRANCHE_RPC", node.address)
    monkeypatch.setenv("TRANCHE_ADMIN_KEY", node.admin_key_path)
    monkeypatch.chdir(tmp_path)
    ns, out = {"__name__": "tutorial"}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, block in enumerate(code):
            exec(compile(block, "README.md block %d" % (i + 1), "exec"), ns)
    printed = out.getvalue()
    assert "refused: insufficient_units" in printed
    assert ns["proven"].seq == ns["receipt"]["seq"] and ns["proven"].txid == ns["trade"].txid
    assert ns["holders"] == {ns["alice_key"].public: 350, ns["bob_key"].public: 250}
    payouts = re.findall(r"^[0-9a-f]{12} (\d+)$", printed, re.M)
    assert sorted(int(p) for p in payouts) == [1625000 * 250 // 600, 1625000 * 350 // 600 + 1]
    assert sorted(os.listdir(tmp_path)) == ["alice.key", "bob.key", "issuer.key", "trade-42.proof"]


def test_pip_installs_the_package(tmp_path):
    """`pip install tools/python` works offline with Debian's setuptools: the
    wheel it builds holds the package.  Built from a copy: setuptools writes
    build/ and *.egg-info beside the sources, never in our tree."""
    import shutil
    import subprocess
    import sys
    import zipfile
    src = tmp_path / "src"
    shutil.copytree(os.path.join(HERE, ".."), src, ignore=shutil.ignore_patterns("tests", "__pycache__", "build",
                                                                                  "*.egg-info"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                        "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PIP_NO_CACHE_DIR="1", TMPDIR=str(tmp_path)))
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = [f for f in os.listdir(tmp_path) if f.endswith(".whl")]
    assert len(wheels) == 1 and wheels[0].startswith("tranche-0.1.0-")
    names = zipfile.ZipFile(os.path.join(tmp_path, wheels[0])).namelist()
    assert {"tranche/__init__.py", "tranche/client.py", "tranche/tx.py", "tranche/verify.py",
            "tranche/keys.py"} <= set(names)
    assert not any(n.startswith("tests/") for n in names)
