import "server-only";
import { loadChannelUrls } from "../lib/config";
import { parseFunnel, type FunnelQuery, type FunnelResult } from "./funnel";

export type { FunnelQuery, FunnelResult } from "./funnel";

const TIMEOUT_MS = 5000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TRIGGER_ID = /^[A-Za-z0-9_.:-]{1,100}$/;

/** The page's search params that the funnel route takes; anything malformed is left out. */
export function funnelQuery(params: Record<string, string | string[] | undefined>): FunnelQuery {
  const one = (name: string) => {
    const value = params[name];
    return typeof value === "string" ? value : undefined;
  };
  const from = one("from");
  const to = one("to");
  const trigger = one("trigger");
  return {
    ...(from && DATE.test(from) ? { from } : {}),
    ...(to && DATE.test(to) ? { to } : {}),
    ...(trigger && TRIGGER_ID.test(trigger) ? { trigger } : {}),
  };
}

/**
 * The offer funnel, fetched by the app's server from the copilot's channel. The token
 * (PROACTIVE_INSIGHTS_TOKEN, needed when `rasa run` has one set) stays on this server; the
 * browser gets the numbers or what went wrong, never the token.
 */
export async function loadFunnel(
  query: FunnelQuery,
  {
    channelUrl = loadChannelUrls().channelUrl,
    token = process.env.PROACTIVE_INSIGHTS_TOKEN || null,
  }: { channelUrl?: string; token?: string | null } = {},
): Promise<FunnelResult> {
  const url = new URL(`${channelUrl}/insights/funnel`);
  for (const [name, value] of Object.entries(query)) if (value) url.searchParams.set(name, value);
  const where = `${url.origin}${url.pathname}`;

  let response: Response;
  try {
    response = await fetch(url, {
      headers: { Accept: "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    return { ok: false, problem: `The copilot could not be reached at ${where}. Is rasa run up?`, detail: reason(error) };
  }

  if (!response.ok) {
    const detail = await errorText(response);
    if (response.status === 401 || response.status === 403) {
      const problem = token
        ? "The copilot refused the insights token: PROACTIVE_INSIGHTS_TOKEN differs between the app and rasa run."
        : "The copilot wants a token for insights: set PROACTIVE_INSIGHTS_TOKEN on the app's server too.";
      return { ok: false, problem, detail };
    }
    if (response.status === 404) {
      return { ok: false, problem: `This rasa run has no insights route (${where} answered 404).`, detail };
    }
    return { ok: false, problem: `The copilot answered ${response.status} for ${where}.`, detail };
  }

  try {
    return { ok: true, funnel: parseFunnel(await response.json()) };
  } catch (error) {
    return { ok: false, problem: "The copilot's answer could not be read as a funnel.", detail: reason(error) };
  }
}

async function errorText(response: Response): Promise<string | null> {
  const text = await response.text().catch(() => "");
  try {
    const { error } = JSON.parse(text) as { error?: unknown };
    if (typeof error === "string") return error;
  } catch {
    // not JSON: the text itself, if short enough to be a message
  }
  return text && text.length <= 300 ? text : null;
}

function reason(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
