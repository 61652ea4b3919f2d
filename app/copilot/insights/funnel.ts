/**
 * The channel's offer funnel (`GET /webhooks/proactive/insights/funnel`), as the insights
 * page reads it: the types, a parser that fills what an older or newer server leaves out,
 * and the small conversions the view draws from. No DOM, no server APIs: both sides use it.
 */

export const STAGES = [
  "fired",
  "held_out",
  "delivered",
  "expired",
  "shown",
  "show_me",
  "open_chat",
  "dismissed",
  "tour_completed",
  "tour_abandoned",
  "follow_up",
  "replied",
  "adopted",
] as const;
export type Stage = (typeof STAGES)[number];

export const STAGE_LABELS: Readonly<Record<Stage, string>> = {
  fired: "Fired",
  held_out: "Held out",
  delivered: "Delivered",
  expired: "Expired",
  shown: "Shown",
  show_me: "Show me",
  open_chat: "Open chat",
  dismissed: "Dismissed",
  tour_completed: "Tour completed",
  tour_abandoned: "Tour abandoned",
  follow_up: "Follow-up sent",
  replied: "Replied",
  adopted: "Adopted",
};

/** The stages the funnel chart draws, top to bottom. */
export const FUNNEL_STAGES: readonly Stage[] = ["fired", "delivered", "shown", "show_me", "open_chat", "dismissed", "adopted"];

export const DISMISS_REASONS = ["close", "escape", "timeout", "navigated"] as const;
export type DismissReason = (typeof DISMISS_REASONS)[number];
export const ABANDON_REASONS = ["closed", "element_missing", "navigated"] as const;
export type AbandonReason = (typeof ABANDON_REASONS)[number];

/** Prometheus-style: cumulative counts by upper bound in seconds; `le: null` is +Inf. */
export type Histogram = { buckets: { le: number | null; count: number }[]; count: number; sum: number };

export type AdoptionRate = { offers: number; adopted: number; rate: number | null };

export type Lift = {
  difference: number | null;
  low: number | null;
  high: number | null;
  relative: number | null;
  confidence: number;
  method: string;
};

export type TriggerFunnel = {
  trigger_id: string;
  holdout_pct: number;
  stages: Record<Stage, number>;
  dismissed: Record<DismissReason, number>;
  tour: {
    /** [step (1-based), count], by step. */
    steps: [number, number][];
    abandoned: Record<AbandonReason, number>;
    abandoned_at_step: [number, number][];
  };
  follow_up: { model: number; fallback: number };
  adoption: { shown: AdoptionRate; held_out: AdoptionRate; baseline: number; lift: Lift };
  latency: { event_to_toast_s: Histogram; click_to_first_bubble_s: Histogram };
};

export type Funnel = { from: string; to: string; triggers: TriggerFunnel[] };

/** What the page asks for: a date range (YYYY-MM-DD, both ends included) and one trigger. */
export type FunnelQuery = { from?: string; to?: string; trigger?: string };

/** The funnel, or why there is none (`problem` for people, `detail` as the server said it). */
export type FunnelResult = { ok: true; funnel: Funnel } | { ok: false; problem: string; detail: string | null };

export class MalformedFunnel extends Error {
  constructor(what: string) {
    super(`the funnel answer is not what the insights page reads: ${what}`);
    this.name = "MalformedFunnel";
  }
}

type Json = Record<string, unknown>;

export function parseFunnel(value: unknown): Funnel {
  const body = object(value);
  if (!Array.isArray(body.triggers)) throw new MalformedFunnel("no triggers list");
  return {
    from: typeof body.from === "string" ? body.from : "",
    to: typeof body.to === "string" ? body.to : "",
    triggers: body.triggers.map(parseTrigger),
  };
}

function parseTrigger(value: unknown): TriggerFunnel {
  const raw = object(value);
  if (typeof raw.trigger_id !== "string" || !raw.trigger_id) throw new MalformedFunnel("a trigger without trigger_id");
  const tour = object(raw.tour);
  const adoption = object(raw.adoption);
  const lift = object(adoption.lift);
  const latency = object(raw.latency);
  const followUp = object(raw.follow_up);
  return {
    trigger_id: raw.trigger_id,
    holdout_pct: count(raw.holdout_pct),
    stages: counts(raw.stages, STAGES),
    dismissed: counts(raw.dismissed, DISMISS_REASONS),
    tour: {
      steps: byStep(tour.steps),
      abandoned: counts(tour.abandoned, ABANDON_REASONS),
      abandoned_at_step: byStep(tour.abandoned_at_step),
    },
    follow_up: { model: count(followUp.model), fallback: count(followUp.fallback) },
    adoption: {
      shown: adoptionRate(adoption.shown),
      held_out: adoptionRate(adoption.held_out),
      baseline: count(adoption.baseline),
      lift: {
        difference: numberOrNull(lift.difference),
        low: numberOrNull(lift.low),
        high: numberOrNull(lift.high),
        relative: numberOrNull(lift.relative),
        confidence: numberOrNull(lift.confidence) ?? 0.95,
        method: typeof lift.method === "string" ? lift.method : "",
      },
    },
    latency: {
      event_to_toast_s: histogram(latency.event_to_toast_s),
      click_to_first_bubble_s: histogram(latency.click_to_first_bubble_s),
    },
  };
}

function object(value: unknown): Json {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : {};
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function counts<K extends string>(value: unknown, keys: readonly K[]): Record<K, number> {
  const raw = object(value);
  return Object.fromEntries(keys.map((key) => [key, count(raw[key])])) as Record<K, number>;
}

function byStep(value: unknown): [number, number][] {
  return Object.entries(object(value))
    .map(([step, n]): [number, number] => [Number(step), count(n)])
    .filter(([step]) => Number.isInteger(step) && step > 0)
    .sort(([a], [b]) => a - b);
}

function adoptionRate(value: unknown): AdoptionRate {
  const raw = object(value);
  return { offers: count(raw.offers), adopted: count(raw.adopted), rate: numberOrNull(raw.rate) };
}

function histogram(value: unknown): Histogram {
  const raw = object(value);
  const buckets = (Array.isArray(raw.buckets) ? raw.buckets : [])
    .filter((bucket): bucket is [unknown, unknown] => Array.isArray(bucket) && bucket.length === 2)
    .map(([le, n]) => ({ le: upperBound(le), count: count(n) }))
    .filter((bucket): bucket is { le: number | null; count: number } => bucket.le !== undefined)
    .sort((a, b) => (a.le ?? Infinity) - (b.le ?? Infinity));
  return { buckets, count: count(raw.count), sum: count(raw.sum) };
}

/** A bucket's upper bound: seconds, null for +Inf, undefined when unreadable. */
function upperBound(value: unknown): number | null | undefined {
  if (value === "+Inf" || value === "Infinity" || value === Infinity) return null;
  const seconds = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isFinite(seconds) ? seconds : undefined;
}

export type HistogramBar = { le: number | null; label: string; count: number };

/** Cumulative buckets → how many fell in each one (between the bound before and its own). */
export function perBucket(histogram: Histogram): HistogramBar[] {
  let below = 0;
  let lower: number | null = null;
  return histogram.buckets.map(({ le, count: cumulative }) => {
    const bar = { le, label: bucketLabel(lower, le), count: Math.max(0, cumulative - below) };
    below = Math.max(below, cumulative);
    lower = le;
    return bar;
  });
}

function bucketLabel(lower: number | null, upper: number | null): string {
  if (upper === null) return lower === null ? "any" : `> ${formatSeconds(lower)}`;
  if (lower === null) return `≤ ${formatSeconds(upper)}`;
  return `${formatSeconds(lower)}–${formatSeconds(upper)}`;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 1) return `${Number((seconds * 1000).toPrecision(3))} ms`;
  return `${Number(seconds.toPrecision(3))} s`;
}

/** The Prometheus-style name of a bucket bound, as in the JSON: "0.025", "+Inf". */
export function boundName(le: number | null): string {
  return le === null ? "+Inf" : String(le);
}

const PERCENT = new Intl.NumberFormat("en", { style: "percent", maximumFractionDigits: 1 });
const POINTS = new Intl.NumberFormat("en", { maximumFractionDigits: 1, signDisplay: "exceptZero" });

export function formatRate(rate: number): string {
  return PERCENT.format(rate);
}

/** A difference of two rates, in percentage points: 0.125 → "+12.5 pp". */
export function formatPoints(difference: number): string {
  return `${POINTS.format(difference * 100)} pp`;
}
