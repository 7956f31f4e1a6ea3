#!/usr/bin/env bash
# Side by side on the same sandbox: understory-sync, dlt (the popular Python loader) and a
# hand-written requests + sqlite3 loader, each copying the bookings stream into a fresh SQLite
# file. Prints rows/s, CPU µs per row (user + system of the loader's process) and peak RSS.
#
#   benches/python/run.sh                # 100,000 bookings
#   BOOKINGS=20000 benches/python/run.sh
#
# Needs python3 (3.9+) with venv and pip, and /usr/bin/time; installs its pinned Python
# packages into target/python-bench. Nothing here asserts a figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
BOOKINGS=${BOOKINGS:-100000}
work=$(mktemp -d)
trap 'kill $(cat "$work/sandbox.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

venv=target/python-bench
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r benches/python/requirements.txt
fi
cargo build --release --quiet
bin=target/release/understory-sync

cat > "$work/sandbox.toml" <<TOML
[data]
bookings = $BOOKINGS
consents = 1000
events = 500
[rate_limit]
requests_per_window = 4000000000
max_concurrent = 256
TOML
"$bin" sandbox --port 0 --config "$work/sandbox.toml" 2>"$work/sandbox.log" &
echo $! > "$work/sandbox.pid"
for _ in $(seq 100); do
    base=$(sed -n 's/^sandbox: serving .* on \(http[^ ]*\)$/\1/p' "$work/sandbox.log")
    [ -n "$base" ] && break
    sleep 0.1
done
[ -n "$base" ] || { echo "the sandbox did not start: $(cat "$work/sandbox.log")" >&2; exit 1; }

cat > "$work/job.toml" <<TOML
database = "$work/rust.sqlite"
[auth]
token_url = "$base/oauth2/token"
client_id = "sandbox-client"
client_secret = "sandbox-secret"
[api]
base_url = "$base/"
requests_per_second = 1000000
max_requests_per_second = 1000000
burst = 10000
max_concurrent = 16
[streams]
orders = false
marketing_consents = false
events = false
experiences = false
TOML

# measure NAME COMMAND...: one run, its figures as a table row.
measure() {
    local name=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" \
        || { echo "$name failed:" >&2; tail -5 "$work/err" >&2; exit 1; }
    read -r wall user sys rss_kb < "$work/time"
    awk -v n="$name" -v rows="$BOOKINGS" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss_kb" \
        'BEGIN { printf "| %-34s | %9.0f | %7.2f s | %8.1f µs | %7.1f MiB |\n", n, rows / w, w, (u + s) * 1e6 / rows, m / 1024 }'
}

# One unmeasured walk first: the sandbox renders each item once and then serves its text, so
# whichever loader ran first would otherwise pay for the rendering.
sed "s|$work/rust.sqlite|$work/warm.sqlite|" "$work/job.toml" > "$work/warm.toml"
"$bin" sync --config "$work/warm.toml" >/dev/null 2>&1

echo "$BOOKINGS bookings, sandbox on loopback (gzip), each loader on a fresh database:"
echo
echo "| loader                             |    rows/s |      wall |  CPU / row |   peak RSS |"
echo "|---|---|---|---|---|"
measure "understory-sync" "$bin" sync --config "$work/job.toml"
measure "requests + sqlite3 (hand-written)" "$venv/bin/python" benches/python/plain_loader.py "$base" "$work/plain.sqlite"
measure "dlt $("$venv/bin/python" -c 'import dlt; print(dlt.__version__)') (rest_api → sqlalchemy)" \
    "$venv/bin/python" benches/python/dlt_loader.py "$base" "$work/dlt.sqlite"
