#!/usr/bin/env bash
# make demo: a simulated WooCommerce store plus config/poll_to_file.yaml polling it every 2 s.
# Seeds 20 orders (backfilled as `created`), then changes a few objects so you see updated, deleted and
# restored events arrive in ./data/demo/poll/<day>.jsonl. Runs for about 40 s; Ctrl-C stops it earlier.
#
# The simulator listens on a free port of 127.0.0.1 unless SIM_ADDR says where (SIM_ADDR=127.0.0.1:8480 make demo);
# the demo stops with a message when that address is taken or something else answers there.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM_ADDR=${SIM_ADDR:-127.0.0.1:0}
DATA=./data/demo
rm -rf "$DATA" && mkdir -p "$DATA" bin
go build -o bin/wcsim ./tests/wcsim/cmd/wcsim

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
fail() { echo "make demo: $*" >&2; exit 1; }

bin/wcsim -addr "$SIM_ADDR" -seed-orders 20 -seed-products 5 -seed-customers 3 -quiet >"$DATA/wcsim.out" 2>&1 &
sim_pid=$!
pids+=("$sim_pid")
# The simulator prints its URL and keys once it listens; it exits when it cannot.
for _ in $(seq 100); do
  grep -q '^url=' "$DATA/wcsim.out" && break
  kill -0 "$sim_pid" 2>/dev/null || fail "the simulator could not listen on $SIM_ADDR: $(tail -1 "$DATA/wcsim.out") (is the port taken? pick another with SIM_ADDR=127.0.0.1:<port>, or leave SIM_ADDR unset for a free one)"
  sleep 0.1
done
sim=$(sed -n 's/^url=//p' "$DATA/wcsim.out")
[ -n "$sim" ] || fail "the simulator did not start within 10 s: $(cat "$DATA/wcsim.out")"
# Make sure the store we are about to poll is the simulator and not whatever else listens there.
curl -fsS "$sim/__sim/info" 2>/dev/null | grep -q '"consumer_key"' ||
  fail "$sim does not answer like the simulator (GET /__sim/info): another program owns that address; set SIM_ADDR to a free one"
key=$(sed -n 's/^key permissions=read_write consumer_key=\([^ ]*\) .*/\1/p' "$DATA/wcsim.out")
secret=$(sed -n 's/^key permissions=read_write consumer_key=[^ ]* consumer_secret=\([^ ]*\)$/\1/p' "$DATA/wcsim.out")
[ -n "$key" ] && [ -n "$secret" ] || fail "no read_write key in the simulator's output: $(cat "$DATA/wcsim.out")"
[ -x bin/wooevents ] || fail "bin/wooevents is missing: run make build first"
echo "simulated store at $sim (SIM_ADDR=${SIM_ADDR}; its keys are simulator test keys, not real credentials)"

WOOEVENTS_STORE_URL="$sim" WOOEVENTS_CONSUMER_KEY="$key" WOOEVENTS_CONSUMER_SECRET="$secret" \
WOOEVENTS_POLL_INTERVAL=2s WOOEVENTS_POLL_START_FROM=beginning WOOEVENTS_DATA_DIR="$DATA" \
WOOEVENTS_HTTP_ADDRESS=127.0.0.1:0 \
  bin/wooevents -c config/poll_to_file.yaml --log.level warn &
pids+=($!)
woo_pid=$!

sim_post() { curl -fsS -X POST -H 'Content-Type: application/json' -d "$2" "$sim/__sim/$1" >/dev/null; }
seen=0
show() { # wait for the poller (2 s interval, 1 s hold-back), then print the events that arrived since last time
  sleep 5
  kill -0 "$woo_pid" 2>/dev/null || fail "wooevents stopped (see its log above)"
  echo "--- $1"
  local all; all=$(cat "$DATA"/poll/*.jsonl 2>/dev/null || true)
  echo "$all" | sed -n "$((seen + 1)),\$p" | tail -n "$2" | cut -c1-200
  seen=$(echo "$all" | grep -c . || true)
}
show "backfill: every seeded object once, as created (last 3 shown)" 3
id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"resource":"orders","fields":{"status":"pending"}}' "$sim/__sim/create" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
show "a new order $id → order.created" 1
sim_post update "{\"resource\":\"orders\",\"id\":$id,\"fields\":{\"status\":\"completed\"}}"
show "order $id completed → order.updated" 1
sim_post trash "{\"resource\":\"orders\",\"id\":$id}"
show "order $id trashed → order.deleted" 1
sim_post update "{\"resource\":\"orders\",\"id\":$id,\"fields\":{\"status\":\"processing\"}}"
show "order $id restored by a status update (WooCommerce fires no webhook for this) → order.restored" 1
sim_post create '{"resource":"customers","fields":{"email":"new@example.test"}}'
show "a new customer → customer.created (customers have no date filters: found by an id scan)" 1
echo "--- $(cat "$DATA"/poll/*.jsonl | wc -l) events in $DATA/poll/"
