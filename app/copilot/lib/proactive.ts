/** The copilot channel's browser-facing routes (rasa-bot/channels/proactive.py). */

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
    // Tour end is sent as the page may be going away.
    keepalive,
  });
  const payload = (await response.json().catch(() => ({}))) as { error?: string };
  if (!response.ok) throw new ChannelError(response.status, payload.error ?? `${path} answered ${response.status}`);
  return payload as T;
}

export type TourStarted = { tour_id: string; flow_id: string; session_id: string };

export function startTour(channelUrl: string, identity: Identity, tourId: string): Promise<TourStarted> {
  return post(channelUrl, "/tour/start", identity, { user_id: identity.userId, tour_id: tourId });
}

export function recordTourStep(channelUrl: string, identity: Identity): Promise<unknown> {
  return post(channelUrl, "/tour/step", identity, { user_id: identity.userId });
}

export function endTour(channelUrl: string, identity: Identity): Promise<unknown> {
  return post(channelUrl, "/tour/end", identity, { user_id: identity.userId }, true);
}

/** Puts the offer's question into the open chat whose socket session is `senderId`. */
export function injectQuestion(channelUrl: string, identity: Identity, senderId: string, offer: Offer): Promise<unknown> {
  return post(channelUrl, "/inject", identity, {
    sender_id: senderId,
    user_id: identity.userId,
    trigger_id: offer.trigger_id,
    body: offer.body,
  });
}
