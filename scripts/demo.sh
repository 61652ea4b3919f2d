#!/usr/bin/env bash
# Starts the demo: one `rasa run` (channels, engine, actions) and the host app beside it.
# Ctrl-C stops both.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
PORT=${PORT:-5005}
APP_PORT=${APP_PORT:-3000}
rasa_url="http://localhost:$PORT"
base="$rasa_url/webhooks/proactive"
app_url="http://localhost:$APP_PORT"

for port in "$PORT" "$APP_PORT"; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "error: port $port is in use; pick others with \`make demo PORT=5006 APP_PORT=3001\`" >&2
    exit 1
  fi
done

cd "$root/rasa-bot"
../.venv/bin/rasa run -m models/proactive.tar.gz -i 127.0.0.1 -p "$PORT" --cors "*" &
rasa_pid=$!
cd "$root/app"
# Own process group, so stopping it also stops the server process next forks.
RASA_URL="$rasa_url" setsid node_modules/.bin/next start -p "$APP_PORT" -H 127.0.0.1 &
app_pid=$!

stop() {
  trap - INT TERM EXIT
  kill -TERM -- "-$app_pid" 2>/dev/null || true
  kill -INT "$rasa_pid" 2>/dev/null || true
  wait "$rasa_pid" "$app_pid" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

echo "== waiting for rasa run on :$PORT and the app on :$APP_PORT"
until curl -s "$base/health" | grep -q '"agent_ready":true'; do
  kill -0 $rasa_pid 2>/dev/null || { echo "rasa run exited" >&2; exit 1; }
  sleep 0.5
done
until curl -s -o /dev/null "$app_url/projects"; do
  kill -0 $app_pid 2>/dev/null || { echo "the app exited" >&2; exit 1; }
  sleep 0.3
done

# The demo user's signature, as the app's server computes it (routes need it: see README "Security").
user_hash=$(cd "$root/rasa-bot" && ../.venv/bin/python -c '
import os
from addons.config import load_config
from addons.security.identity import SECRET_ENV, user_hash
print(user_hash(os.environ.get(SECRET_ENV) or load_config("proactive.yml").identity.secret or "", "u-1001"))')

cat <<MSG

== Ready. Open $app_url/projects   (Ctrl-C stops everything)

The reference story: on Projects, change the priority of three projects one by one
(Edit → Priority → Save changes). A toast offers help, bottom-right:
  - "Show me" runs a four-step tour of the hidden bulk edit (⋯ menu → Bulk edit → tick → Apply to N);
  - "Open chat" opens the assistant with the same question as its first message.
The header's user menu switches who you are signed in as (a fresh copilot session).
The demo gate allows one offer per 10 s engagement + 20 s cooldown (rasa-bot/proactive.yml).

What became of the offers:         $app_url/insights   (the funnel, adoption, latencies; Prometheus: $base/metrics)
Why an offer did or did not fire:  curl -s $base/debug/u-1001 -H 'X-Proactive-User-Hash: $user_hash'
The bot alone, without the app:    curl -N '$base/stream/u-1001?user_hash=$user_hash'   (then post events to $base/events)

Chat answers use a model only if OPENAI_API_KEY or OPENAI_BASE_URL was set when this started;
without one, the Open-chat follow-up is the how-to as written (the log above says which).

MSG
wait $rasa_pid
