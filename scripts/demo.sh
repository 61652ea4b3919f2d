#!/usr/bin/env bash
# Starts the bot (one `rasa run`: channels, engine, actions) and prints how to see a toast.
set -euo pipefail
cd "$(dirname "$0")/../rasa-bot"
PORT=${PORT:-5005}
base="http://localhost:$PORT/webhooks/proactive"

if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
  echo "error: port $PORT is in use; run \`make demo PORT=5006\`" >&2
  exit 1
fi

../.venv/bin/rasa run -m models/proactive.tar.gz -i 127.0.0.1 -p "$PORT" --enable-api --cors "*" &
rasa_pid=$!
stop() { kill -INT $rasa_pid 2>/dev/null; wait $rasa_pid 2>/dev/null || true; }
trap 'stop; exit 0' INT TERM
trap stop EXIT

echo "== waiting for rasa run on :$PORT"
until curl -s "$base/health" | grep -q '"agent_ready":true'; do
  kill -0 $rasa_pid 2>/dev/null || { echo "rasa run exited" >&2; exit 1; }
  sleep 0.5
done

cat <<MSG

== Ready: $base  (Ctrl-C stops it)

The reference story, by hand. In a second terminal, open the toast stream of user "demo-user":

  curl -N $base/stream/demo-user

In a third, post three "Save changes" clicks on /projects, as posthog-js would:

  for i in 1 2 3; do
    curl -s $base/events -H 'Content-Type: application/json' -d '{
      "event": "\$autocapture", "distinct_id": "demo-user", "timestamp": "'\$(date +%s.%N)'",
      "properties": {"\$session_id": "demo-session", "\$current_url": "http://localhost:3000/projects",
                     "\$event_type": "click", "\$el_text": "Save changes"}}'; echo
  done

The stream prints an "event: proactive" frame at once. Then, to see why and what the state is:

  curl -s $base/debug/demo-user

"Show me" is  curl -s $base/tour/start -d '{"user_id": "demo-user", "tour_id": "bulk_edit_tour"}'
(then /tour/step and /tour/end with {"user_id": "demo-user"}). The demo gate allows one offer
per 10 s engagement + 20 s cooldown (rasa-bot/proactive.yml).

Chat answers use a model only if OPENAI_API_KEY or OPENAI_BASE_URL was set when this started;
without one, the Open-chat follow-up is the how-to as written (the log above says which).

MSG
wait $rasa_pid
