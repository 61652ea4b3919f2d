import "server-only";
import { createHmac } from "node:crypto";

/**
 * Everything the browser side needs to reach the copilot, in one place.
 *
 * Read on the server at request time (not inlined at build time), so one build serves
 * any Rasa URL or user. Env vars, with defaults that match `make demo`:
 *   RASA_URL             the `rasa run` base URL          (http://localhost:5005)
 *   POSTHOG_PROJECT_KEY  the api_key posthog-js sends     (phc_proactive_demo)
 *   POSTHOG_API_HOST     your PostHog (e.g. https://eu.i.posthog.com): posthog-js reports
 *                        there as usual and tees each event to the copilot (unset: the
 *                        copilot is posthog-js's only destination)
 *   USERTOUR_TOKEN       use Usertour instead of the bundled tour renderer (unset)
 *   TOAST_DISMISS_MS     how long an unattended toast stays  (20000)
 *   PROACTIVE_IDENTITY_SECRET  the HMAC key shared with `rasa run` (the demo's, as in
 *                        rasa-bot/proactive.yml; set your own in production)
 *   PROACTIVE_INSIGHTS_TOKEN  the bearer token for the channel's insights route, when
 *                        `rasa run` has one; read by insights/loadFunnel.ts only (unset)
 * The signed-in user comes from the host app (its session); see lib/config.ts for the demo's.
 */
export type CopilotUser = {
  id: string;
  /** `name` and `email` only for a known person; an id alone gets no invented name. */
  name: string | null;
  email: string | null;
};

export type CopilotConfig = {
  rasaUrl: string;
  channelUrl: string;
  posthogKey: string;
  /** The team's PostHog, when posthog-js keeps reporting there; null: the copilot only. */
  posthogHost: string | null;
  usertourToken: string | null;
  toastDismissMs: number;
  user: CopilotUser;
  /** HMAC-SHA256(secret, user id): proves to the copilot that this browser is this user. */
  userHash: string;
};

const DEMO_IDENTITY_SECRET = "demo-identity-secret-change-me";

export function loadCopilotConfig(user: CopilotUser): CopilotConfig {
  const { rasaUrl, channelUrl } = loadChannelUrls();
  return {
    rasaUrl,
    channelUrl,
    posthogKey: process.env.POSTHOG_PROJECT_KEY || "phc_proactive_demo",
    posthogHost: process.env.POSTHOG_API_HOST ? process.env.POSTHOG_API_HOST.replace(/\/+$/, "") : null,
    usertourToken: process.env.USERTOUR_TOKEN || null,
    toastDismissMs: positiveInt(process.env.TOAST_DISMISS_MS) ?? 20_000,
    user,
    userHash: createHmac("sha256", process.env.PROACTIVE_IDENTITY_SECRET || DEMO_IDENTITY_SECRET)
      .update(user.id)
      .digest("hex"),
  };
}

/** The `rasa run` base URL and its copilot channel's, from RASA_URL. */
export function loadChannelUrls(): { rasaUrl: string; channelUrl: string } {
  const rasaUrl = (process.env.RASA_URL || "http://localhost:5005").replace(/\/+$/, "");
  return { rasaUrl, channelUrl: `${rasaUrl}/webhooks/proactive` };
}

function positiveInt(value: string | undefined): number | null {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : null;
}
