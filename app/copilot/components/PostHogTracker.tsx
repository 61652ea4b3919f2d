"use client";

import { usePathname } from "next/navigation";
import posthog from "posthog-js";
import { useEffect } from "react";
import { useCopilotConfig } from "./CopilotConfigContext";

/**
 * posthog-js, pointed at the copilot's ingest route and at nothing else.
 *
 * Events go one request each (no batching) so the server sees the third save at once.
 * Everything that would fetch from another host — flags, remote config, external scripts,
 * recordings, surveys, tours, experiments, conversations — is off. Next.js <Link>
 * navigations fire no pageview of their own, so one is captured on every route change.
 */
export function PostHogTracker() {
  const { channelUrl, posthogKey, user } = useCopilotConfig();
  const pathname = usePathname();

  useEffect(() => {
    if (!posthog.__loaded) {
      posthog.init(posthogKey, {
        api_host: channelUrl,
        request_batching: false,
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
  }, [channelUrl, posthogKey, user.id, user.name, user.email]);

  useEffect(() => {
    posthog.capture("$pageview");
  }, [pathname]);

  return null;
}
