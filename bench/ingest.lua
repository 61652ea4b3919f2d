-- wrk script: every request is a new PostHog event (plain JSON, as server-side senders post
-- it), for 1,000 users on /projects: a pageview then clicks, a third of them "Save changes".
-- The same script drives the copilot's /events and the bare Sanic route.
local counter = 0
local thread_id = 0
local labels = {"Edit", "Priority", "Save changes"}

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local user = counter % 1000
  local kind = "$autocapture"
  if counter % 20 == 1 then kind = "$pageview" end
  local body = string.format(
    '{"uuid":"%08x-0000-4000-8000-%012x","event":"%s","distinct_id":"wu%d","timestamp":"%d.%03d",' ..
    '"properties":{"$current_url":"http://localhost:3000/projects","$pathname":"/projects",' ..
    '"$session_id":"ws%d","token":"phc_proactive_demo","$event_type":"click","$el_text":"%s","$lib":"web"}}',
    thread_id, counter, kind, user, os.time(), counter % 1000, user, labels[counter % 3 + 1])
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"errors_connect\":%d,\"errors_read\":%d," ..
    "\"errors_write\":%d,\"errors_status\":%d,\"errors_timeout\":%d,\"p50_us\":%d,\"p99_us\":%d}\n",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
