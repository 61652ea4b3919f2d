"use client";

import Form from "next/form";
import { usePathname } from "next/navigation";
import type { ReactNode } from "react";
import { AdoptionChart, FunnelChart, LatencyChart, LiftChart } from "./charts";
import {
  ABANDON_REASONS,
  DISMISS_REASONS,
  STAGES,
  STAGE_LABELS,
  boundName,
  formatPoints,
  formatRate,
  formatSeconds,
  perBucket,
  type AbandonReason,
  type AdoptionRate,
  type DismissReason,
  type FunnelQuery,
  type FunnelResult,
  type Histogram,
  type Lift,
  type TriggerFunnel,
} from "./funnel";
import "./insights.css";

const DISMISS_LABELS: Readonly<Record<DismissReason, string>> = {
  close: "× button",
  escape: "Esc key",
  timeout: "Timed out",
  navigated: "Left the page",
};

const ABANDON_LABELS: Readonly<Record<AbandonReason, string>> = {
  closed: "Closed",
  element_missing: "Element missing",
  navigated: "Left the page",
};

/**
 * Did the nudge help? Per trigger: the offer funnel, adoption against the held-out users
 * with the lift's interval, and how fast offers reached the toast. Every number drawn is
 * also written out, each with a `data-testid`.
 */
export function InsightsView({ result, query }: { result: FunnelResult; query: FunnelQuery }) {
  const funnel = result.ok ? result.funnel : null;
  return (
    <div className="insights">
      <header className="insights-header">
        <div>
          <h1>Insights</h1>
          <p className="muted">
            Did the nudge help?
            {funnel && (
              <>
                {" "}
                Offers from <span data-testid="insights-from">{funnel.from}</span> to{" "}
                <span data-testid="insights-to">{funnel.to}</span>.
              </>
            )}
          </p>
        </div>
        <RangeForm
          from={query.from ?? funnel?.from ?? ""}
          to={query.to ?? funnel?.to ?? ""}
          trigger={query.trigger ?? ""}
          triggers={funnel?.triggers.map((trigger) => trigger.trigger_id) ?? []}
        />
      </header>
      {!result.ok ? (
        <section className="card insights-problem" role="alert" data-testid="insights-problem">
          <h2>Insights are not available</h2>
          <p>{result.problem}</p>
          {result.detail && <p className="muted mono">{result.detail}</p>}
        </section>
      ) : result.funnel.triggers.length === 0 ? (
        <p className="card muted" data-testid="insights-empty">
          No offers fired in this period.
        </p>
      ) : (
        result.funnel.triggers.map((trigger) => <TriggerInsights key={trigger.trigger_id} trigger={trigger} />)
      )}
    </div>
  );
}

function RangeForm({ from, to, trigger, triggers }: { from: string; to: string; trigger: string; triggers: string[] }) {
  const pathname = usePathname();
  const choices = trigger && !triggers.includes(trigger) ? [trigger, ...triggers] : triggers;
  return (
    <Form action={pathname} className="insights-range" key={`${from}/${to}/${trigger}`}>
      <label className="field">
        From
        <input type="date" name="from" defaultValue={from} />
      </label>
      <label className="field">
        To
        <input type="date" name="to" defaultValue={to} />
      </label>
      <label className="field">
        Trigger
        <select name="trigger" defaultValue={trigger}>
          <option value="">All triggers</option>
          {choices.map((id) => (
            <option key={id} value={id}>
              {id}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" className="btn">
        Show
      </button>
    </Form>
  );
}

function TriggerInsights({ trigger }: { trigger: TriggerFunnel }) {
  const { stages, adoption, latency, tour } = trigger;
  const titleId = `trigger-title-${trigger.trigger_id}`;
  return (
    <section className="card insights-trigger" data-testid={`trigger-${trigger.trigger_id}`} aria-labelledby={titleId}>
      <header className="insights-trigger-header">
        <h2 id={titleId} className="mono">
          {trigger.trigger_id}
        </h2>
        <span className="insights-pill">
          <span data-testid="holdout-pct">{trigger.holdout_pct}</span>% held out
        </span>
      </header>

      <div className="insights-row">
        <div>
          <h3>Funnel</h3>
          <FunnelChart trigger={trigger} />
        </div>
        <dl className="insights-stats" aria-label="Offers by stage">
          {STAGES.map((stage) => (
            <Figure key={stage} label={STAGE_LABELS[stage]} testId={`stage-${stage}`} value={stages[stage]} />
          ))}
        </dl>
      </div>

      <div className="insights-row">
        <div>
          <h3>Adoption</h3>
          <AdoptionChart shown={adoption.shown.rate} heldOut={adoption.held_out.rate} />
        </div>
        <div>
          <dl className="insights-figures">
            <RateFigure label="Shown the offer" testId="adoption-shown" rate={adoption.shown} />
            <RateFigure label="Held out" testId="adoption-held-out" rate={adoption.held_out} />
            <Figure label="Baseline adoptions" testId="baseline-adoptions" value={adoption.baseline} />
            <LiftFigures lift={adoption.lift} />
          </dl>
          <LiftChart lift={adoption.lift} />
          {adoption.lift.method && <p className="insights-note">{adoption.lift.method}</p>}
        </div>
      </div>

      <div className="insights-row insights-row--even">
        <LatencyBlock title="Event → toast" testId="latency-event-to-toast" histogram={latency.event_to_toast_s} />
        <LatencyBlock
          title="Open chat → first bubble"
          testId="latency-click-to-first-bubble"
          histogram={latency.click_to_first_bubble_s}
        />
      </div>

      <div className="insights-details">
        <Breakdown title="Dismissed by">
          {DISMISS_REASONS.map((reason) => (
            <Figure key={reason} label={DISMISS_LABELS[reason]} testId={`dismissed-${reason}`} value={trigger.dismissed[reason]} />
          ))}
        </Breakdown>
        <Breakdown title="Tour steps done" empty={tour.steps.length === 0 ? "No steps yet" : null}>
          {tour.steps.map(([step, count]) => (
            <Figure key={step} label={`Step ${step}`} testId={`tour-step-${step}`} value={count} />
          ))}
        </Breakdown>
        <Breakdown title="Tours abandoned">
          {ABANDON_REASONS.map((reason) => (
            <Figure key={reason} label={ABANDON_LABELS[reason]} testId={`tour-abandoned-${reason}`} value={tour.abandoned[reason]} />
          ))}
          {tour.abandoned_at_step.map(([step, count]) => (
            <Figure key={`at-${step}`} label={`At step ${step}`} testId={`tour-abandoned-at-step-${step}`} value={count} />
          ))}
        </Breakdown>
        <Breakdown title="Chat follow-ups">
          <Figure label="Written by the model" testId="follow-up-model" value={trigger.follow_up.model} />
          <Figure label="Fallback text" testId="follow-up-fallback" value={trigger.follow_up.fallback} />
        </Breakdown>
      </div>
    </section>
  );
}

function Figure({ label, testId, value }: { label: string; testId: string; value: ReactNode }) {
  return (
    <div className="insights-figure">
      <dt>{label}</dt>
      <dd data-testid={testId}>{value}</dd>
    </div>
  );
}

function RateFigure({ label, testId, rate }: { label: string; testId: string; rate: AdoptionRate }) {
  return (
    <div className="insights-figure">
      <dt>{label}</dt>
      <dd>
        <span data-testid={`${testId}-rate`} data-value={rate.rate ?? ""}>
          {rate.rate === null ? "no data" : formatRate(rate.rate)}
        </span>{" "}
        <span className="muted">
          (<span data-testid={`${testId}-adopted`}>{rate.adopted}</span> of{" "}
          <span data-testid={`${testId}-offers`}>{rate.offers}</span>)
        </span>
      </dd>
    </div>
  );
}

function LiftFigures({ lift }: { lift: Lift }) {
  const { difference, low, high, relative } = lift;
  return (
    <>
      <div className="insights-figure">
        <dt>Lift (shown − held out)</dt>
        <dd>
          <span data-testid="lift-difference" data-value={difference ?? ""}>
            {difference === null ? "not enough data" : formatPoints(difference)}
          </span>
          {relative !== null && (
            <span className="muted">
              {" "}
              (<span data-testid="lift-relative">{formatRate(relative)}</span> relative)
            </span>
          )}
        </dd>
      </div>
      <div className="insights-figure">
        <dt>{formatRate(lift.confidence)} interval</dt>
        <dd data-testid="lift-interval" data-low={low ?? ""} data-high={high ?? ""}>
          {low === null || high === null ? "not enough data" : `${formatPoints(low)} to ${formatPoints(high)}`}
        </dd>
      </div>
    </>
  );
}

function LatencyBlock({ title, testId, histogram }: { title: string; testId: string; histogram: Histogram }) {
  const mean = histogram.count > 0 ? histogram.sum / histogram.count : null;
  return (
    <div data-testid={testId}>
      <h3>{title}</h3>
      <LatencyChart histogram={histogram} what={`${title} latency, offers per bucket`} />
      <dl className="insights-figures insights-figures--inline">
        <Figure label="Offers" testId={`${testId}-count`} value={histogram.count} />
        <div className="insights-figure">
          <dt>Mean</dt>
          <dd data-testid={`${testId}-mean`} data-value={mean ?? ""}>
            {mean === null ? "—" : formatSeconds(mean)}
          </dd>
        </div>
      </dl>
      <dl className="insights-buckets" aria-label={`${title}: offers per bucket`}>
        {perBucket(histogram).map((bar) => (
          <Figure key={boundName(bar.le)} label={bar.label} testId={`latency-bucket-${boundName(bar.le)}`} value={bar.count} />
        ))}
      </dl>
    </div>
  );
}

function Breakdown({ title, empty = null, children }: { title: string; empty?: string | null; children: ReactNode }) {
  return (
    <div>
      <h3>{title}</h3>
      {empty ? <p className="muted insights-empty-note">{empty}</p> : <dl className="insights-figures">{children}</dl>}
    </div>
  );
}
