"""The bookings stream loaded the way a hand-written Python job would: requests with a session,
the cursor followed page by page, each page upserted with sqlite3's executemany and committed
with its cursor. Typed columns as the Rust job stores them, plus the item's JSON. Written for
the side-by-side benchmark (`run.sh`), not shipped.

Usage: python plain_loader.py BASE_URL DATABASE
"""

import json
import sqlite3
import sys

import requests

base, database = sys.argv[1].rstrip("/"), sys.argv[2]

COLUMNS = (
    "id status created_at updated_at company_id experience_id event_id locale source "
    "internal_note customer_type customer_name customer_email customer_phone metadata_json raw_json"
).split()

db = sqlite3.connect(database)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute(f"CREATE TABLE IF NOT EXISTS bookings ({', '.join(COLUMNS)}, PRIMARY KEY (id))")
db.execute("CREATE TABLE IF NOT EXISTS state (stream PRIMARY KEY, cursor)")
for col in ("created_at", "updated_at", "status", "event_id", "experience_id"):
    db.execute(f"CREATE INDEX IF NOT EXISTS bookings_{col} ON bookings ({col})")
upsert = (
    f"INSERT INTO bookings VALUES ({', '.join('?' * len(COLUMNS))}) "
    f"ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
)

http = requests.Session()
token = http.post(
    f"{base}/oauth2/token",
    data={
        "grant_type": "client_credentials",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "audience": "https://api.understory.io",
        "scope": "booking.read",
    },
).json()["access_token"]
http.headers["Authorization"] = f"Bearer {token}"


def row(b):
    c = b.get("customer") or {}
    return (
        b["id"], b.get("status"), b["created_at"], b["updated_at"], b.get("company_id"),
        b.get("experience_id"), b.get("event_id"), b.get("locale"), b.get("source"),
        b.get("internal_note"), c.get("customer_type"), c.get("full_name") or c.get("name"),
        c.get("email"), c.get("phone"),
        json.dumps(b["metadata"]) if b.get("metadata") is not None else None,
        json.dumps(b),
    )


rows, cursor = 0, ""
while True:
    r = http.get(f"{base}/v1/bookings", params={"limit": 100, "cursor": cursor})
    r.raise_for_status()
    page = r.json()
    db.executemany(upsert, [row(b) for b in page["items"]])
    cursor = page.get("next") or ""
    db.execute("INSERT OR REPLACE INTO state VALUES ('bookings', ?)", (cursor,))
    db.commit()
    rows += len(page["items"])
    if not cursor:
        break
print(f"rows {rows}")
