#!/usr/bin/env bash
# Instructions a request, counted by callgrind: repeatable where wall-clock figures are not
# (this machine's speed changes by ±15% between runs, more than most single changes buy).
#
#   bench/instructions.sh [HERALD_BINARY]     (default target/release/herald)
#
# Starts the binary under `valgrind --tool=callgrind` on a fresh SQLite file, fills a user's
# inbox with 2,000 notifications, then for each kind of request zeroes the counters, sends N
# requests (default 400, 8 at once, with curl; a tenth as many of the server-rendered inbox,
# signed in as the user) and dumps the counts; prints instructions per request of each kind. The callgrind files stay in the output directory (OUT, default
# target/instructions) for `callgrind_annotate --inclusive=yes FILE`; build with
# `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only` for file and line names. Needs valgrind
# and curl. Compare two binaries by running it once for each: the counts of the same binary
# agree within about 1% from run to run (a search's within 6%: the search indexer's timing
# decides what a search finds to index).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(readlink -f "${1:-$ROOT/target/release/herald}")
OUT=$(mkdir -p "${OUT:-$ROOT/target/instructions}" && cd "${OUT:-$ROOT/target/instructions}" && pwd)
N=${N:-400}
PORT=${PORT:-39123}
command -v valgrind >/dev/null || { echo "needs valgrind (Debian: apt-get install valgrind)" >&2; exit 1; }
rm -f "$OUT"/callgrind.*
DIR=$(mktemp -d)
trap 'kill "${VPID:-}" 2>/dev/null || true; rm -rf "$DIR"' EXIT
cd "$DIR"
export HERALD_DATABASE_URL="sqlite:$DIR/herald.db" HERALD_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn \
  HERALD_LIMITS__PUBLISH_PER_MINUTE=0 HERALD_LIMITS__USER_PER_MINUTE=0
PUBLISHER=$("$BIN" token create --service external:bench)
"$BIN" user add bench --password-stdin <<< bench-password >/dev/null
READER=$("$BIN" token create --user user:default/bench)
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p" "$BIN" serve > serve.log 2> valgrind.log &
VPID=$!
for _ in $(seq 600); do grep -q "Herald is running" serve.log 2>/dev/null && break; sleep 0.5; done
grep -q "Herald is running" serve.log || { cat valgrind.log >&2; exit 1; }
API=http://127.0.0.1:$PORT/api/notifications

# N publishes, 8 at once, numbered from $1; each a notification with a scope of its own.
publish() {
  seq "$1" $(($1 + $2 - 1)) | xargs -P 8 -I{} curl -sf -o /dev/null -X POST "$API/notifications" \
    -H "Authorization: Bearer $PUBLISHER" -H 'Content-Type: application/json' \
    -d '{"recipients":{"type":"entity","entityRef":"user:default/bench"},"payload":{"title":"Build {} of foo failed","description":"The pipeline for service {} failed at the test stage.","link":"https://ci.example.com/builds/{}","severity":"high","topic":"deploy","scope":"build-{}"}}'
}
# N reads of $1, 8 at once.
read_n() {
  seq "$2" | xargs -P 8 -I{} curl -sf -o /dev/null "$API/$1" -H "Authorization: Bearer $READER"
}
# Counts what the command that follows the name costs, as a dump of that name.
phase() {
  local name=$1; shift
  callgrind_control -z "$VPID" >/dev/null 2>&1
  "$@"
  callgrind_control -d "$name" "$VPID" >/dev/null 2>&1
}

publish 100000 2000
sleep 2
phase publish publish 0 "$N"
sleep 2
phase first_page read_n 'notifications?limit=20&offset=0' "$N"
phase unread read_n 'notifications?limit=20&offset=0&read=false' "$N"
phase search read_n 'notifications?limit=20&offset=0&search=foo' "$N"
phase status read_n 'status' "$N"
# The inbox as the server renders it for a signed-in browser (a tenth as many: each is larger).
COOKIE=$(curl -s -o /dev/null -D - -X POST "http://127.0.0.1:$PORT/api/signin" \
  --data-urlencode username=bench --data-urlencode password=bench-password \
  | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
# The page must be the signed-in inbox, not the sign-in page a browser without a session
# gets (also with status 200): it shows the notifications published above.
PAGE=$(curl -sf "http://127.0.0.1:$PORT/" -H "Cookie: $COOKIE" || true)
[[ $PAGE == *"of foo failed"* ]] || { echo "the server did not render bench's inbox (signing in failed?)" >&2; exit 1; }
render_n() {
  seq "$1" | xargs -P 8 -I{} curl -sf -o /dev/null "http://127.0.0.1:$PORT/" -H "Cookie: $COOKIE"
}
phase rendered_inbox render_n $((N / 10))

echo "| request | instructions a request |"
echo "|---|---:|"
for f in "$OUT"/callgrind.*.[0-9]*; do
  name=$(sed -n 's/^desc: Trigger: dump //p' "$f")
  total=$(sed -n 's/^summary: //p' "$f")
  count=$N
  [ "$name" = rendered_inbox ] && count=$((N / 10))
  printf '| %s | %s |\n' "$name" $((total / count))
done
