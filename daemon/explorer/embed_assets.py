#!/usr/bin/env python3
"""Compile the explorer's static files into a C table (daemon/explorer.h).

Each input becomes {"/<name>", content type, bytes, length}; index.html is
also served at "/".  The page is part of the binary: no file is looked up at
run time and nothing is fetched from elsewhere (no CDN).
"""
import sys

TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
         "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}

out, inputs = sys.argv[1], sys.argv[2:]
with open(out, "w", encoding="utf-8") as f:
    f.write("/* Generated from daemon/explorer/ by embed_assets.py. Do not edit. */\n")
    f.write("#include \"explorer.h\"\n\n")
    rows = []
    for i, path in enumerate(inputs):
        name = path.split("/")[-1]
        data = open(path, "rb").read()
        f.write("static const unsigned char asset_%d[] = {" % i)
        for k, b in enumerate(data):
            f.write(("\n  " if k % 20 == 0 else "") + "%d," % b)
        f.write("\n  0};\n")
        ctype = TYPES[name.rsplit(".", 1)[-1]]
        rows.append(("/" + name, ctype, i, len(data)))
        if name == "index.html":
            rows.append(("/", ctype, i, len(data)))
    f.write("\nconst tr_explorer_asset_t tr_explorer_assets[] = {\n")
    for path, ctype, i, n in rows:
        f.write("  {\"%s\", \"%s\", (const char *)asset_%d, %d},\n" % (path, ctype, i, n))
    f.write("};\nconst size_t tr_explorer_assets_count = %d;\n" % len(rows))
