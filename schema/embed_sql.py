#!/usr/bin/env python3
"""Compile schema/*.sql into a C array of migrations, in the given order.

Migration i (1-based) upgrades a database from user_version i-1 to i.
"""
import sys

out, inputs = sys.argv[1], sys.argv[2:]
with open(out, "w", encoding="utf-8") as f:
    f.write("/* Generated from the schema SQL files by schema/embed_sql.py. Do not edit. */\n")
    f.write("#include <stddef.h>\n\n")
    f.write("const char *const tr_schema_migrations[] = {\n")
    for path in inputs:
        with open(path, "r", encoding="utf-8") as s:
            sql = s.read()
        f.write("    /* %s */\n    \"" % path.split("/")[-1])
        f.write(sql.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n\"\n    \""))
        f.write("\",\n")
    f.write("};\n")
    f.write("const size_t tr_schema_migrations_count = %d;\n" % len(inputs))
