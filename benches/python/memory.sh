#!/usr/bin/env bash
# Peak resident memory of the release binary (`understory-sync sync`, /usr/bin/time -v), in the
# cases that size the units' MemoryMax=:
#   hostile  4 experiences whose ticket variants page on for 25 pages of 10 MB (250 MB a list,
#            past sync.max_in_flight_bytes: each is refused)
#   within   16 experiences with 6 pages of 10 MB each (60 MB, just under the default ceiling:
#            every list is stored), at api.max_concurrent = 4 and 16
#   small-then-big  128 experiences whose ticket variants and information requests each come as
#            6 pages of one item, then one page of 16.5 MB, at api.max_concurrent = 64: the tiny
#            bodies teach the budget nothing about the big ones
#   ordinary the sandbox with BOOKINGS bookings (default 20,000), every list stream but the
#            information-request answers on
#
#   cargo build --release && benches/python/memory.sh
#
# Needs python3 and /usr/bin/time. Nothing here asserts a figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(realpath "${BIN:-target/release/understory-sync}")
BOOKINGS=${BOOKINGS:-20000}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

config() { # config NAME PORT CLIENT STREAMS API
    mkdir -p "$work/$1"
    cat > "$work/$1/sync.toml" <<EOT
database = "sync.sqlite"
[auth]
token_url = "http://127.0.0.1:$2/oauth2/token"
client_id = "$3"
[api]
base_url = "http://127.0.0.1:$2"
requests_per_second = 1000
max_requests_per_second = 5000
$5
[retry]
max_attempts = 2
rate_limited_wait_secs = 1
max_retry_after_secs = 1
[streams]
$4
EOT
}

measure() { # measure NAME SECRET
    local out=$work/$1/time.txt code=0
    (cd "$work/$1" && UNDERSTORY_CLIENT_SECRET=$2 /usr/bin/time -v "$BIN" sync --config sync.toml) 2> "$out" || code=$?
    local kib
    kib=$(awk -F': ' '/Maximum resident/ {print $2}' "$out")
    printf '%-12s exit %s  peak RSS %s MiB  %s\n' "$1" "$code" "$((kib / 1024))" \
        "$(awk -F'): ' '/Elapsed/ {print $2}' "$out")"
}

variants="experiences = true
ticket_variants = true"
only_variants="bookings = false
orders = false
marketing_consents = false
events = false
$variants"
python3 benches/python/big_lists.py 18781 4 25 10 & pids+=($!)
python3 benches/python/big_lists.py 18782 16 6 10 & pids+=($!)
python3 benches/python/big_lists.py 18784 128 1 16.5 6 & pids+=($!)
"$BIN" sandbox --port 18783 --bookings "$BOOKINGS" > /dev/null 2>&1 & pids+=($!)
sleep 3
config hostile 18781 stub "$only_variants" ""
config within 18782 stub "$only_variants" "max_concurrent = 4"
config within16 18782 stub "$only_variants" "max_concurrent = 16"
config small-then-big 18784 stub "$only_variants
information_requests = true" "max_concurrent = 64"
config ordinary 18783 sandbox-client "bookings = true
booking_tickets = true
orders = true
marketing_consents = true
events = true
$variants
information_requests = true" "max_concurrent = 8"
for name in hostile within within16 small-then-big; do measure "$name" stub; done
measure ordinary sandbox-secret
