"use client";

import { usePathname } from "next/navigation";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { OfferReporter } from "../lib/offerEvents";
import { ChannelError, injectQuestion, type DismissReason, type Offer, type TourStarted } from "../lib/proactive";
import { chooseTourRenderer, type TourHandle } from "../tours";
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
 *
 * Each offer shown is reported once, and so is the one way it went away: Show me, Open
 * chat, or dismissed (×, Esc, the timeout, leaving the page). A tour it started is ended
 * as navigated when the user leaves the page it runs on.
 */
export function ProactiveToast() {
  const config = useCopilotConfig();
  const { channelUrl, user, userHash, toastDismissMs } = config;
  const identity = useMemo(() => ({ userId: user.id, userHash }), [user.id, userHash]);
  const reporter = useMemo(() => new OfferReporter(channelUrl, identity), [channelUrl, identity]);
  const chat = useChat();
  const [offer, hide] = useOfferStream(channelUrl, identity);
  const [hovered, setHovered] = useState(false);
  const [focused, setFocused] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const tourRenderer = useMemo(() => chooseTourRenderer(config), [config]);
  const pathname = usePathname();
  const currentPath = useRef(pathname);
  currentPath.current = pathname;
  const shownOn = useRef<string | null>(null);
  const runningTour = useRef<{ handle: TourHandle; path: string } | null>(null);

  const dismiss = useCallback(
    (current: Offer, reason: DismissReason) => {
      reporter.settle(current, { event: "dismissed", reason });
      hide();
    },
    [reporter, hide],
  );

  useAutoDismiss(offer?.offer_id ?? null, toastDismissMs, hovered || focused, () => {
    if (offer) dismiss(offer, "timeout");
  });

  useEffect(() => {
    setProblem(null);
    setHovered(false);
    setFocused(false);
    shownOn.current = offer ? window.location.pathname : null;
    if (offer) reporter.shown(offer);
  }, [offer, reporter]);

  // An offer is about the page the user was working on; leaving it withdraws the toast.
  useEffect(() => {
    if (offer && shownOn.current !== null && shownOn.current !== pathname) dismiss(offer, "navigated");
  }, [pathname, offer, dismiss]);

  // A tour points at this page's elements; on another page it could only get stuck.
  useEffect(() => {
    const running = runningTour.current;
    if (running && running.path !== pathname) running.handle.stop("navigated");
  }, [pathname]);

  // Leaving the document entirely (reload, closing the tab, another site) ends a tour and
  // withdraws a toast too, reported while the page can still send.
  const visibleOffer = useRef<Offer | null>(null);
  visibleOffer.current = offer;
  useEffect(() => {
    const onPageHide = () => {
      reporter.leaving();
      runningTour.current?.handle.stop("navigated");
      if (visibleOffer.current) reporter.settle(visibleOffer.current, { event: "dismissed", reason: "navigated" });
    };
    window.addEventListener("pagehide", onPageHide);
    return () => window.removeEventListener("pagehide", onPageHide);
  }, [reporter]);

  // Esc dismisses it, unless something else (a dialog, a menu) claimed the key first. Listening
  // from before the toast is painted: an Esc pressed the moment it appears is not missed.
  useLayoutEffect(() => {
    if (offer === null) return;
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      if (document.querySelector("dialog[open], [role='menu']")) return;
      dismiss(offer, "escape");
    };
    document.addEventListener("keydown", onKeyDown);
    return () => document.removeEventListener("keydown", onKeyDown);
  }, [offer, dismiss]);

  const showMe = useCallback(
    async (current: Offer) => {
      reporter.settle(current, { event: "show_me" });
      const path = currentPath.current;
      let started: TourStarted | null = null;
      try {
        started = await reporter.startTour(current, current.tours[0].id);
        const tour = { offer: current, tourId: started.tour_id };
        let handle: TourHandle | null = null;
        let ended = false;
        handle = await tourRenderer.start(started.flow_id, {
          onStep: (step) => reporter.tourStep(tour, step),
          onEnd: (end) => {
            ended = true;
            if (runningTour.current?.handle === handle) runningTour.current = null;
            reporter.tourEnded(tour, end);
          },
        });
        if (!ended) runningTour.current = { handle, path };
        if (currentPath.current !== path) handle.stop("navigated"); // left while it was starting
        hide();
      } catch (error) {
        logChannelError("tour start")(error);
        // The server has a tour running (offers stay paused until it ends) that never
        // showed its first step.
        if (started) {
          const tour = { offer: current, tourId: started.tour_id };
          reporter.tourEnded(tour, { outcome: "abandoned", reason: "element_missing", step: 1 });
        }
        setProblem("The tour could not start. Try “Open chat” instead.");
      }
    },
    [reporter, hide, tourRenderer],
  );

  const openChat = useCallback(
    async (current: Offer) => {
      reporter.settle(current, { event: "open_chat" });
      hide();
      try {
        await chat.open();
        const senderId = await chat.waitForSessionId(CHAT_READY_TIMEOUT_MS);
        await withRetryOnNotFound(() => injectQuestion(channelUrl, identity, senderId, current));
      } catch (error) {
        logChannelError("open chat")(error);
      }
    },
    [channelUrl, identity, chat, reporter, hide],
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
            <button
              type="button"
              className="toast-close"
              aria-label="Dismiss suggestion"
              onClick={() => dismiss(offer, "close")}
            >
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
