"use client";

import { usePathname } from "next/navigation";
import posthog, { type CaptureResult } from "posthog-js";
import { useEffect } from "react";
import { useCopilotConfig } from "./CopilotConfigContext";

/**
 * posthog-js, feeding the copilot.
 *
 * Without `posthogHost` the copilot is its only destination: events go one request each (no
 * batching) so the server sees the third save at once. With it ("tee mode"), posthog-js
 * reports to the team's PostHog as it always would (its own batching, its own retries), and
 * `before_send` hands each event, as it leaves for PostHog, to the copilot at once: one
 * identity, one session and one uuid per event in both places, so neither counts it twice
 * (a second posthog-js instance would have had its own ids). Everything that would fetch
 * from another host besides those two is off. Next.js <Link> navigations fire no pageview of
 * their own, so one is captured on every route change.
 */
export function PostHogTracker() {
  const { channelUrl, posthogHost, posthogKey, user } = useCopilotConfig();
  const pathname = usePathname();

  useEffect(() => {
    if (!posthog.__loaded) {
      posthog.init(posthogKey, {
        api_host: posthogHost ?? channelUrl,
        request_batching: posthogHost !== null,
        before_send: posthogHost ? (event) => teeToCopilot(channelUrl, posthogKey, event) : undefined,
        autocapture: true,
        capture_pageview: false,
        capture_pageleave: false,
        capture_dead_clicks: false,
        capture_exceptions: false,
        capture_performance: false,
        enable_heatmaps: false,
        advanced_disable_flags: true,
        disable_external_dependency_loading: true,
        disable_session_recording: true,
        disable_surveys: true,
        disable_product_tours: true,
        disable_web_experiments: true,
        disable_conversations: true,
        // Headless browsers (tests, synthetic checks) are otherwise dropped as bots.
        opt_out_useragent_filter: true,
        person_profiles: "identified_only",
      });
    }
    // Person properties: the copilot greets the user by the first word of `name`.
    const person = { ...(user.name ? { name: user.name } : {}), ...(user.email ? { email: user.email } : {}) };
    const current = posthog.get_distinct_id();
    if (current !== user.id) {
      // Another user was signed in on this browser: start a fresh anonymous identity first.
      if (current !== posthog.get_property("$device_id")) posthog.reset();
      posthog.identify(user.id, person);
    } else if (user.name || user.email) {
      // Already identified in an earlier page load; the copilot keeps names in memory only,
      // so say them again on every load (it may have restarted since).
      posthog.setPersonProperties(person);
    }
  }, [channelUrl, posthogHost, posthogKey, user.id, user.name, user.email]);

  useEffect(() => {
    posthog.capture("$pageview");
  }, [pathname]);

  return null;
}

/**
 * The event as posthog-js sends it to PostHog, also posted to the copilot's capture route
 * right away. A plain-text body keeps it a simple request (no CORS preflight); `keepalive`
 * lets it finish while the page unloads. PostHog's copy is returned unchanged.
 */
function teeToCopilot(channelUrl: string, apiKey: string, event: CaptureResult | null): CaptureResult | null {
  if (event) {
    const body = JSON.stringify({ api_key: apiKey, batch: [event], sent_at: new Date().toISOString() });
    fetch(`${channelUrl}/e/`, { method: "POST", body, keepalive: true, headers: { "Content-Type": "text/plain" } })
      .catch(() => undefined); // the copilot being down must not disturb the app or PostHog
  }
  return event;
}

