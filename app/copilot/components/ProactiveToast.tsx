"use client";

import { usePathname } from "next/navigation";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ChannelError, endTour, injectQuestion, recordTourStep, startTour, type Offer } from "../lib/proactive";
import { chooseTourRenderer } from "../tours";
import { useChat } from "./ChatWidget";
import { useCopilotConfig } from "./CopilotConfigContext";
import { useAutoDismiss } from "./useAutoDismiss";
import { useOfferStream } from "./useOfferStream";

/** How long "Open chat" waits for the widget's socket before giving up. */
const CHAT_READY_TIMEOUT_MS = 10_000;
/** The server answers 404 until the new socket has joined its session; retry that briefly. */
const INJECT_RETRY_MS = 250;
const INJECT_RETRY_FOR_MS = 4_000;

/**
 * The copilot's offer, shown by the host app while the chat is closed: bottom-right, above
 * the chat launcher. "Show me" (only when the offer carries a tour) runs the tour;
 * "Open chat" opens the widget and asks the server to put the question into it.
 */
export function ProactiveToast() {
  const config = useCopilotConfig();
  const { channelUrl, user, userHash, toastDismissMs } = config;
  const identity = useMemo(() => ({ userId: user.id, userHash }), [user.id, userHash]);
  const chat = useChat();
  const [offer, dismiss] = useOfferStream(channelUrl, identity);
  const [hovered, setHovered] = useState(false);
  const [focused, setFocused] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const tourRenderer = useMemo(() => chooseTourRenderer(config), [config]);
  const pathname = usePathname();
  const shownOn = useRef<string | null>(null);

  useAutoDismiss(offer?.offer_id ?? null, toastDismissMs, hovered || focused, dismiss);

  useEffect(() => {
    setProblem(null);
    setHovered(false);
    setFocused(false);
    shownOn.current = offer ? window.location.pathname : null;
  }, [offer]);

  // An offer is about the page the user was working on; leaving it withdraws the toast.
  useEffect(() => {
    if (shownOn.current !== null && shownOn.current !== pathname) dismiss();
  }, [pathname, dismiss]);

  // Esc dismisses it, unless something else (a dialog, a menu) claimed the key first.
  useEffect(() => {
    if (offer === null) return;
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      if (document.querySelector("dialog[open], [role='menu']")) return;
      dismiss();
    };
    document.addEventListener("keydown", onKeyDown);
    return () => document.removeEventListener("keydown", onKeyDown);
  }, [offer, dismiss]);

  const showMe = useCallback(
    async (current: Offer) => {
      const tour = current.tours[0];
      // Step and end calls go one after another: an end overtaking the last step would
      // leave that step refused (no tour running) on the server.
      let lifecycle: Promise<unknown> = Promise.resolve();
      const then = (call: () => Promise<unknown>, what: string) => {
        lifecycle = lifecycle.then(call).catch(logChannelError(what));
      };
      let started = false;
      try {
        const { flow_id } = await startTour(channelUrl, identity, tour.id);
        started = true;
        await tourRenderer.start(flow_id, {
          onStep: () => then(() => recordTourStep(channelUrl, identity), "tour step"),
          onEnd: () => then(() => endTour(channelUrl, identity), "tour end"),
        });
        dismiss();
      } catch (error) {
        logChannelError("tour start")(error);
        if (started) then(() => endTour(channelUrl, identity), "tour end"); // or offers stay paused
        setProblem("The tour could not start. Try “Open chat” instead.");
      }
    },
    [channelUrl, identity, dismiss, tourRenderer],
  );

  const openChat = useCallback(
    async (current: Offer) => {
      dismiss();
      try {
        await chat.open();
        const senderId = await chat.waitForSessionId(CHAT_READY_TIMEOUT_MS);
        await withRetryOnNotFound(() => injectQuestion(channelUrl, identity, senderId, current));
      } catch (error) {
        logChannelError("open chat")(error);
      }
    },
    [channelUrl, identity, chat, dismiss],
  );

  const tour = offer?.tours[0];
  return (
    <div className={`toast-region${chat.isOpen ? " toast-region--beside-chat" : ""}`} role="status" aria-live="polite">
      {offer && (
        <section
          className="toast"
          aria-label="Suggestion from the assistant"
          data-offer-id={offer.offer_id}
          data-trigger-id={offer.trigger_id}
          onMouseEnter={() => setHovered(true)}
          onMouseLeave={() => setHovered(false)}
          onFocus={() => setFocused(true)}
          onBlur={(event) => {
            if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setFocused(false);
          }}
        >
          <header className="toast-header">
            <span className="toast-badge" aria-hidden="true">
              ✦
            </span>
            <span className="toast-title">Assistant tip</span>
            <button type="button" className="toast-close" aria-label="Dismiss suggestion" onClick={dismiss}>
              ×
            </button>
          </header>
          <p className="toast-body">{offer.body}</p>
          {problem && <p className="toast-problem">{problem}</p>}
          <div className="toast-actions">
            {tour && (
              <button type="button" className="btn btn-primary" id="toast-show-me" onClick={() => void showMe(offer)}>
                Show me
              </button>
            )}
            <button
              type="button"
              className={tour ? "btn" : "btn btn-primary"}
              id="toast-open-chat"
              onClick={() => void openChat(offer)}
            >
              Open chat
            </button>
          </div>
        </section>
      )}
    </div>
  );
}

async function withRetryOnNotFound<T>(call: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + INJECT_RETRY_FOR_MS;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof ChannelError && error.status === 404) || performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, INJECT_RETRY_MS));
    }
  }
}

function logChannelError(what: string): (error: unknown) => void {
  return (error) => console.error(`proactive ${what}:`, error);
}
