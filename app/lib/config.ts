import "server-only";
import { createHmac } from "node:crypto";
import { cookies } from "next/headers";
import { memberById } from "./team";

/**
 * Everything the browser side needs to reach the copilot, in one place.
 *
 * Read on the server at request time (not inlined at build time), so one build serves
 * any Rasa URL or user. Env vars, with defaults that match `make demo`:
 *   RASA_URL             the `rasa run` base URL          (http://localhost:5005)
 *   APP_USER_ID          the signed-in user               (u-1001)
 *   POSTHOG_PROJECT_KEY  the api_key posthog-js sends     (phc_proactive_demo)
 *   USERTOUR_TOKEN       use Usertour instead of the bundled tour renderer (unset)
 *   TOAST_DISMISS_MS     how long an unattended toast stays  (20000)
 *   PROACTIVE_IDENTITY_SECRET  the HMAC key shared with `rasa run` (the demo's, as in
 *                        rasa-bot/proactive.yml; set your own in production)
 * A real app takes the user from its session; the demo lets you switch users with the
 * `demo_user` cookie (the header's user menu sets it).
 */
export type AppConfig = {
  rasaUrl: string;
  channelUrl: string;
  posthogKey: string;
  usertourToken: string | null;
  toastDismissMs: number;
  /** `name` and `email` only for a known person; an id alone gets no invented name. */
  user: { id: string; name: string | null; email: string | null };
  /** HMAC-SHA256(secret, user id): proves to the copilot that this browser is this user. */
  userHash: string;
};

export const DEMO_USER_COOKIE = "demo_user";
const DEMO_IDENTITY_SECRET = "demo-identity-secret-change-me";
const USER_ID_PATTERN = /^[A-Za-z0-9._@:-]{1,128}$/;

export async function loadAppConfig(): Promise<AppConfig> {
  const rasaUrl = (process.env.RASA_URL || "http://localhost:5005").replace(/\/+$/, "");
  const cookieUser = (await cookies()).get(DEMO_USER_COOKIE)?.value;
  const userId = cookieUser && USER_ID_PATTERN.test(cookieUser) ? cookieUser : process.env.APP_USER_ID || "u-1001";
  const member = memberById(userId);
  return {
    rasaUrl,
    channelUrl: `${rasaUrl}/webhooks/proactive`,
    posthogKey: process.env.POSTHOG_PROJECT_KEY || "phc_proactive_demo",
    usertourToken: process.env.USERTOUR_TOKEN || null,
    toastDismissMs: positiveInt(process.env.TOAST_DISMISS_MS) ?? 20_000,
    user: { id: userId, name: member?.name ?? null, email: member?.email ?? null },
    userHash: createHmac("sha256", process.env.PROACTIVE_IDENTITY_SECRET || DEMO_IDENTITY_SECRET)
      .update(userId)
      .digest("hex"),
  };
}

function positiveInt(value: string | undefined): number | null {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : null;
}
