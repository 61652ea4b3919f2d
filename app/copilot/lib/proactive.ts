/** The copilot channel's browser-facing routes (rasa-bot/channels/proactive.py). */

import type { TourEnd } from "../tours/renderer";

export type TourOffer = { id: string; flow_id: string; label: string };

/** One `event: proactive` frame of the toast stream. */
export type Offer = {
  offer_id: string;
  user_id: string;
  session_id: string;
  trigger_id: string;
  body: string;
  tours: TourOffer[];
  created_at: number;
};

export class ChannelError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ChannelError";
  }
}

/** Who the browser is, as the app's server signed it (EventSource cannot send headers). */
export type Identity = { userId: string; userHash: string };

export function streamUrl(channelUrl: string, { userId, userHash }: Identity): string {
  return `${channelUrl}/stream/${encodeURIComponent(userId)}?user_hash=${encodeURIComponent(userHash)}`;
}

export function parseOffer(data: string): Offer | null {
  try {
    const offer = JSON.parse(data) as Offer;
    if (typeof offer.offer_id !== "string" || typeof offer.body !== "string") return null;
    return { ...offer, tours: Array.isArray(offer.tours) ? offer.tours : [] };
  } catch {
    return null;
  }
}

async function post<T>(channelUrl: string, path: string, identity: Identity, body: object, keepalive = false): Promise<T> {
  const response = await fetch(`${channelUrl}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Proactive-User-Hash": identity.userHash },
    body: JSON.stringify(body),
    // Reports may be sent as the page goes away.
    keepalive,
  });
  const payload = (await response.json().catch(() => ({}))) as { error?: string };
  if (!response.ok) throw new ChannelError(response.status, payload.error ?? `${path} answered ${response.status}`);
  return payload as T;
}

export type TourStarted = { tour_id: string; flow_id: string; session_id: string };

/** Starts the tour `tourId` that `offerId`'s "Show me" asked for. */
export function startTour(channelUrl: string, identity: Identity, tourId: string, offerId: string): Promise<TourStarted> {
  return post(channelUrl, "/tour/start", identity, { user_id: identity.userId, tour_id: tourId, offer_id: offerId });
}

/** The user just completed step `step` (1-based) of the tour `offerId`'s "Show me" started. */
export function recordTourStep(channelUrl: string, identity: Identity, offerId: string, step: number): Promise<unknown> {
  return post(channelUrl, "/tour/step", identity, { user_id: identity.userId, offer_id: offerId, step }, true);
}

export function endTour(channelUrl: string, identity: Identity, offerId: string, end: TourEnd): Promise<unknown> {
  const ids = { user_id: identity.userId, offer_id: offerId };
  const body =
    end.outcome === "unknown"
      ? { user_id: identity.userId } // the tour state ends; no outcome is claimed for the offer
      : end.outcome === "completed"
        ? { ...ids, outcome: end.outcome, step: end.step }
        : { ...ids, outcome: end.outcome, reason: end.reason, step: end.step };
  return post(channelUrl, "/tour/end", identity, body, true);
}

export type DismissReason = "close" | "escape" | "timeout" | "navigated";

/** What became of an offer the toast showed: exactly one per offer. */
export type OfferOutcome = { event: "show_me" } | { event: "open_chat" } | { event: "dismissed"; reason: DismissReason };

/** The toast became visible with `offerId` (`shown`), or what the user did with it. */
export function recordOfferEvent(
  channelUrl: string,
  identity: Identity,
  offerId: string,
  event: { event: "shown" } | OfferOutcome,
): Promise<unknown> {
  return post(channelUrl, "/offer/event", identity, { user_id: identity.userId, offer_id: offerId, ...event }, true);
}

/** Puts the offer's question into the open chat whose socket session is `senderId`. */
export function injectQuestion(channelUrl: string, identity: Identity, senderId: string, offer: Offer): Promise<unknown> {
  return post(channelUrl, "/inject", identity, {
    sender_id: senderId,
    user_id: identity.userId,
    trigger_id: offer.trigger_id,
    offer_id: offer.offer_id,
    body: offer.body,
  });
}
