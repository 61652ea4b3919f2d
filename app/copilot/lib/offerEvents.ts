import posthog from "posthog-js";
import type { TourEnd } from "../tours/renderer";
import {
  endTour,
  recordOfferEvent,
  recordTourStep,
  startTour,
  type Identity,
  type Offer,
  type OfferOutcome,
  type TourStarted,
} from "./proactive";

/** The offer a tour was started from, and the tour's id as the server named it. */
export type TourContext = { offer: Offer; tourId: string };

/**
 * Did the nudge help? Every fact about an offer goes both to the copilot's channel (its
 * funnel, /insights) and to PostHog as a `proactive …` event with `offer_id` and
 * `trigger_id` (and `tour_id` for tours).
 *
 * The channel calls go one after another, in the order they happened: the server reads
 * them as a sequence (an outcome after `shown`; a tour's end after its last step, or that
 * step would be refused with no tour running). Reports are fire-and-forget: a failure is
 * a warning in the console, never something the user sees.
 */
export class OfferReporter {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly shownIds = new Set<string>();
  private readonly settledIds = new Set<string>();
  private unloading = false;

  constructor(
    private readonly channelUrl: string,
    private readonly identity: Identity,
  ) {}

  /** The toast became visible with `offer`; reported once per offer id. */
  shown(offer: Offer): void {
    if (this.shownIds.has(offer.offer_id)) return;
    this.shownIds.add(offer.offer_id);
    this.report("offer shown", () => recordOfferEvent(this.channelUrl, this.identity, offer.offer_id, { event: "shown" }));
    capture("proactive offer shown", offerProperties(offer));
  }

  /** What became of `offer`: only its first outcome is reported. True if this was it. */
  settle(offer: Offer, outcome: OfferOutcome): boolean {
    if (this.settledIds.has(offer.offer_id)) return false;
    this.settledIds.add(offer.offer_id);
    this.report(`offer ${outcome.event}`, () => recordOfferEvent(this.channelUrl, this.identity, offer.offer_id, outcome));
    if (outcome.event === "dismissed") {
      capture("proactive offer dismissed", { ...offerProperties(offer), reason: outcome.reason });
    } else {
      capture(outcome.event === "show_me" ? "proactive offer show me" : "proactive offer open chat", offerProperties(offer));
    }
    return true;
  }

  /** Asks the server to start `offer`'s tour `tourId`, after whatever was reported before. */
  startTour(offer: Offer, tourId: string): Promise<TourStarted> {
    return this.enqueue(() => startTour(this.channelUrl, this.identity, tourId, offer.offer_id));
  }

  /** The user completed step `step` (1-based) of the tour. */
  tourStep(tour: TourContext, step: number): void {
    this.report("tour step", () => recordTourStep(this.channelUrl, this.identity, tour.offer.offer_id, step));
    capture("proactive tour step", { ...tourProperties(tour), step });
  }

  tourEnded(tour: TourContext, end: TourEnd): void {
    this.report("tour end", () => endTour(this.channelUrl, this.identity, tour.offer.offer_id, end));
    if (end.outcome === "completed") capture("proactive tour completed", tourProperties(tour));
    else if (end.outcome === "abandoned") {
      capture("proactive tour abandoned", { ...tourProperties(tour), reason: end.reason, step: end.step });
    }
  }

  private enqueue<T>(call: () => Promise<T>): Promise<T> {
    const result = this.queue.then(call);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** The page is going away: reports from now on go at once (keepalive), not behind the queue. */
  leaving(): void {
    this.unloading = true;
  }

  private report(what: string, call: () => Promise<unknown>): void {
    const sent = this.unloading ? call() : this.enqueue(call);
    sent.catch((error: unknown) => console.warn(`proactive ${what} report failed:`, error));
  }
}

function offerProperties(offer: Offer): { offer_id: string; trigger_id: string } {
  return { offer_id: offer.offer_id, trigger_id: offer.trigger_id };
}

function tourProperties({ offer, tourId }: TourContext): { offer_id: string; trigger_id: string; tour_id: string } {
  return { ...offerProperties(offer), tour_id: tourId };
}

/** posthog-js is started by PostHogTracker; an app without it just has no PostHog copy. */
function capture(event: string, properties: Record<string, string | number>): void {
  try {
    if (posthog.__loaded) posthog.capture(event, properties);
  } catch (error) {
    console.warn(`posthog capture of ${event} failed:`, error);
  }
}
