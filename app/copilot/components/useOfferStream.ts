"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { parseOffer, streamUrl, type Identity, type Offer } from "../lib/proactive";

/**
 * The user's toast stream: the latest offer not yet dismissed.
 *
 * EventSource reconnects by itself (the server sends `retry:`); an offer seen once is not
 * shown again if a reconnect replays it.
 */
export function useOfferStream(channelUrl: string, { userId, userHash }: Identity): [Offer | null, () => void] {
  const [offer, setOffer] = useState<Offer | null>(null);
  const seen = useRef(new Set<string>());

  useEffect(() => {
    const source = new EventSource(streamUrl(channelUrl, { userId, userHash }));
    const onOffer = (event: MessageEvent<string>) => {
      const next = parseOffer(event.data);
      if (next === null) {
        console.warn("proactive stream: ignored a malformed offer frame");
        return;
      }
      if (seen.current.has(next.offer_id)) return;
      seen.current.add(next.offer_id);
      setOffer(next);
    };
    source.addEventListener("proactive", onOffer as EventListener);
    return () => {
      source.removeEventListener("proactive", onOffer as EventListener);
      source.close();
    };
  }, [channelUrl, userId, userHash]);

  const dismiss = useCallback(() => setOffer(null), []);
  return [offer, dismiss];
}
