"""psycopg 3 against perdure's PostgreSQL port: run by the e2e test `pg::psycopg_...`.

Usage: psycopg_check.py DSN DEPLOYMENT_ID. Exits non-zero with a message on the first
mismatch; prints `ok` at the end.
"""
import sys

import psycopg
from psycopg import errors

dsn, deployment = sys.argv[1], sys.argv[2]

with psycopg.connect(dsn, autocommit=False) as conn:
    # Parameters go over the extended protocol (server-side binding); psycopg prepares a
    # statement once it ran a few times, so the loop covers both unnamed and named ones.
    for _ in range(8):
        row = conn.execute(
            "SELECT id, endpoint FROM sys_deployment WHERE id = %s", (deployment,)
        ).fetchone()
        assert row is not None and row[0] == deployment, row
    n = conn.execute(
        "SELECT count(*) FROM sys_invocation WHERE target_service_name = %s AND status = %s",
        ("Greeter", "completed"),
    ).fetchone()[0]
    assert n >= 1, n
    # Binary results.
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT count(*) AS n, max(created_at) AS newest FROM sys_invocation")
        n, newest = cur.fetchone()
        assert n >= 1 and newest is not None, (n, newest)
    # Typed columns come back as Python values.
    created = conn.execute("SELECT created_at FROM sys_deployment LIMIT 1").fetchone()[0]
    assert hasattr(created, "year"), created
    conn.commit()

    try:
        conn.execute("DELETE FROM sys_invocation")
        raise SystemExit("DELETE ran")
    except errors.ReadOnlySqlTransaction as e:
        assert "read-only" in str(e), e
    conn.rollback()
    try:
        conn.execute("SELECT * FROM no_such_table")
        raise SystemExit("an unknown table answered")
    except errors.UndefinedTable as e:
        assert "no_such_table" in str(e), e
    conn.rollback()
    try:
        conn.execute("SELEC 1")
        raise SystemExit("bad SQL ran")
    except errors.SyntaxError as e:
        assert "SELEC" in str(e), e
    conn.rollback()

print("ok")
