# Run by tests/it/duckdb.rs right after docs/analysts.md's DuckDB recipe, in the same interpreter (so
# `con` is the recipe's connection, attached read-only and in use): writes what DuckDB answered to
# answers.json for the test to compare with SQLite. Its one argument is JSON: the pinned packages,
# the views to read whole, and the Parquet file the recipe wrote.
import decimal
import glob
import importlib.metadata
import json
import os
import sys

import duckdb_ext

asked = json.loads(sys.argv[1])


def plain(value):
    """DuckDB's DECIMAL as a number; any other type SQLite has no counterpart for fails here."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not a type SQLite gives: {value!r}")


def answer(sql):
    cursor = con.execute(sql)  # noqa: F821 (the recipe's)
    return {"columns": [d[0] for d in cursor.description], "rows": cursor.fetchall()}


answers = {
    "versions": {name: importlib.metadata.version(name) for name in asked["packages"]},
    # Where DuckDB loaded its SQLite extension from, and where the wheel keeps it.
    "extension": con.execute(  # noqa: F821
        "SELECT install_path FROM duckdb_extensions() WHERE extension_name = 'sqlite_scanner' AND loaded"
    ).fetchone()[0],
    "wheel": os.path.join(duckdb_ext.__path__[0], "extensions"),
    "queries": {
        os.path.basename(path): answer(open(path).read())
        for path in sorted(glob.glob("sql/queries/*.sql"))
    },
    "views": {view: answer(f'SELECT * FROM "{view}"') for view in asked["views"]},
    "parquet": answer(f"SELECT * FROM read_parquet('{asked['parquet']}')"),
}
with open("answers.json", "w") as out:
    json.dump(answers, out, default=plain)
