"use client";

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  LinearScale,
  Tooltip,
  type ChartOptions,
  type Plugin,
} from "chart.js";
import { useEffect, useMemo, useRef } from "react";
import {
  FUNNEL_STAGES,
  STAGE_LABELS,
  formatPoints,
  formatRate,
  perBucket,
  type Histogram,
  type Lift,
  type Stage,
  type TriggerFunnel,
} from "./funnel";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

/** Colours from the page's CSS (insights.css and the app's variables), read when drawing. */
type Theme = {
  accent: string;
  soft: string;
  good: string;
  muted: string;
  border: string;
  text: string;
  font: string;
  animate: boolean;
};

function readTheme(canvas: HTMLCanvasElement): Theme {
  const css = getComputedStyle(canvas);
  const color = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return {
    accent: color("--accent", "#4f46e5"),
    soft: color("--insights-soft", "#a5b4fc"),
    good: color("--insights-good", "#067647"),
    muted: color("--muted", "#667085"),
    border: color("--border", "#e3e6ee"),
    text: color("--text", "#1d2130"),
    font: css.fontFamily,
    animate: !window.matchMedia("(prefers-reduced-motion: reduce)").matches,
  };
}

/** Draws with `draw` into the returned canvas ref while mounted, again when `data` changes. */
function useChart<T>(draw: (canvas: HTMLCanvasElement, theme: Theme, data: T) => Chart, data: T) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas) return;
    const chart = draw(canvas, readTheme(canvas), data);
    return () => chart.destroy();
  }, [draw, data]);
  return ref;
}

function baseOptions(theme: Theme): ChartOptions<"bar"> {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: theme.animate ? { duration: 300 } : false,
    font: { family: theme.font },
    color: theme.text,
    plugins: { tooltip: { displayColors: false } },
  };
}

function axis(theme: Theme, extra: Record<string, unknown> = {}) {
  return {
    grid: { color: theme.border },
    border: { color: theme.border },
    ticks: { color: theme.muted, font: { family: theme.font } },
    ...extra,
  };
}

function countAxis(theme: Theme) {
  return axis(theme, { beginAtZero: true, ticks: { color: theme.muted, font: { family: theme.font }, precision: 0 } });
}

function stageColor(stage: Stage, theme: Theme): string {
  if (stage === "dismissed") return theme.muted;
  if (stage === "adopted") return theme.good;
  if (stage === "show_me" || stage === "open_chat") return theme.soft;
  return theme.accent;
}

/** The funnel follows the offers delivered: its last bar is their adoptions, not the held-out group's. */
function funnelCount(trigger: TriggerFunnel, stage: Stage): number {
  return stage === "adopted" ? trigger.adoption.shown.adopted : trigger.stages[stage];
}

function funnelLabel(stage: Stage): string {
  return stage === "adopted" ? "Adopted (shown)" : STAGE_LABELS[stage];
}

function drawFunnel(canvas: HTMLCanvasElement, theme: Theme, trigger: TriggerFunnel): Chart {
  return new Chart<"bar", number[], string>(canvas, {
    type: "bar",
    data: {
      labels: FUNNEL_STAGES.map(funnelLabel),
      datasets: [
        {
          data: FUNNEL_STAGES.map((stage) => funnelCount(trigger, stage)),
          backgroundColor: FUNNEL_STAGES.map((stage) => stageColor(stage, theme)),
          borderRadius: 4,
          maxBarThickness: 22,
        },
      ],
    },
    options: {
      ...baseOptions(theme),
      indexAxis: "y",
      scales: { x: countAxis(theme), y: axis(theme, { grid: { display: false } }) },
    },
  });
}

export function FunnelChart({ trigger }: { trigger: TriggerFunnel }) {
  const ref = useChart(drawFunnel, trigger);
  const label = `Funnel of ${trigger.trigger_id}: ${FUNNEL_STAGES.map(
    (stage) => `${funnelLabel(stage)} ${funnelCount(trigger, stage)}`,
  ).join(", ")}`;
  return (
    <div className="insights-chart">
      <canvas ref={ref} role="img" aria-label={label} />
    </div>
  );
}

type Rates = { shown: number | null; heldOut: number | null };

function drawAdoption(canvas: HTMLCanvasElement, theme: Theme, rates: Rates): Chart {
  const percent = (rate: number | null) => (rate === null ? null : rate * 100);
  return new Chart<"bar", (number | null)[], string>(canvas, {
    type: "bar",
    data: {
      labels: ["Shown the offer", "Held out"],
      datasets: [
        {
          data: [percent(rates.shown), percent(rates.heldOut)],
          backgroundColor: [theme.accent, theme.muted],
          borderRadius: 4,
          maxBarThickness: 56,
        },
      ],
    },
    options: {
      ...baseOptions(theme),
      scales: {
        x: axis(theme, { grid: { display: false } }),
        y: axis(theme, {
          min: 0,
          max: 100,
          ticks: { color: theme.muted, font: { family: theme.font }, callback: (value: number | string) => `${value}%` },
        }),
      },
      plugins: {
        tooltip: {
          displayColors: false,
          callbacks: { label: (item) => (item.parsed.y === null ? "no offers" : formatRate(item.parsed.y / 100)) },
        },
      },
    },
  });
}

export function AdoptionChart({ shown, heldOut }: { shown: number | null; heldOut: number | null }) {
  const ref = useChart(drawAdoption, useMemo(() => ({ shown, heldOut }), [shown, heldOut]));
  const rate = (value: number | null) => (value === null ? "no data" : formatRate(value));
  return (
    <div className="insights-chart insights-chart--narrow">
      <canvas
        ref={ref}
        role="img"
        aria-label={`Adoption rate: shown the offer ${rate(shown)}, held out ${rate(heldOut)}`}
      />
    </div>
  );
}

type Interval = { difference: number; low: number; high: number };

/** The point estimate as a tick across the interval's bar, and a dashed line at zero. */
function estimateMarker(difference: number, theme: Theme): Plugin<"bar"> {
  return {
    id: "liftEstimate",
    afterDatasetsDraw(chart) {
      const { ctx, chartArea, scales } = chart;
      const bar = chart.getDatasetMeta(0).data[0];
      if (!bar) return;
      const zero = scales.x.getPixelForValue(0);
      const estimate = scales.x.getPixelForValue(difference * 100);
      ctx.save();
      ctx.strokeStyle = theme.muted;
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(zero, chartArea.top);
      ctx.lineTo(zero, chartArea.bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(estimate, bar.y - 14);
      ctx.lineTo(estimate, bar.y + 14);
      ctx.stroke();
      ctx.restore();
    },
  };
}

function drawLift(canvas: HTMLCanvasElement, theme: Theme, lift: Interval): Chart {
  const low = lift.low * 100;
  const high = lift.high * 100;
  const reach = Math.min(100, Math.ceil((Math.max(5, Math.abs(low), Math.abs(high)) * 1.1) / 10) * 10);
  return new Chart<"bar", [number, number][], string>(canvas, {
    type: "bar",
    data: {
      labels: ["Lift"],
      datasets: [{ data: [[low, high]], backgroundColor: theme.soft, borderRadius: 3, barThickness: 14 }],
    },
    options: {
      ...baseOptions(theme),
      indexAxis: "y",
      scales: {
        x: axis(theme, {
          min: -reach,
          max: reach,
          ticks: { color: theme.muted, font: { family: theme.font }, callback: (value: number | string) => `${value} pp` },
        }),
        y: axis(theme, { display: false }),
      },
      plugins: {
        tooltip: {
          displayColors: false,
          callbacks: {
            label: () =>
              `${formatPoints(lift.difference)}, interval ${formatPoints(lift.low)} to ${formatPoints(lift.high)}`,
          },
        },
      },
    },
    plugins: [estimateMarker(lift.difference, theme)],
  });
}

export function LiftChart({ lift }: { lift: Lift }) {
  const { difference, low, high } = lift;
  const interval = useMemo(
    () => (difference === null || low === null || high === null ? null : { difference, low, high }),
    [difference, low, high],
  );
  if (interval === null) return null;
  return <LiftCanvas interval={interval} confidence={lift.confidence} />;
}

function LiftCanvas({ interval, confidence }: { interval: Interval; confidence: number }) {
  const ref = useChart(drawLift, interval);
  const label =
    `Lift in adoption, shown minus held out: ${formatPoints(interval.difference)}, ` +
    `${formatRate(confidence)} interval ${formatPoints(interval.low)} to ${formatPoints(interval.high)}`;
  return (
    <div className="insights-chart insights-chart--short">
      <canvas ref={ref} role="img" aria-label={label} />
    </div>
  );
}

function drawLatency(canvas: HTMLCanvasElement, theme: Theme, histogram: Histogram): Chart {
  const bars = perBucket(histogram);
  return new Chart<"bar", number[], string>(canvas, {
    type: "bar",
    data: {
      labels: bars.map((bar) => bar.label),
      datasets: [{ data: bars.map((bar) => bar.count), backgroundColor: theme.accent, borderRadius: 4, maxBarThickness: 48 }],
    },
    options: {
      ...baseOptions(theme),
      scales: { x: axis(theme, { grid: { display: false } }), y: countAxis(theme) },
      plugins: { tooltip: { displayColors: false, callbacks: { label: (item) => `${item.parsed.y} offers` } } },
    },
  });
}

export function LatencyChart({ histogram, what }: { histogram: Histogram; what: string }) {
  const ref = useChart(drawLatency, histogram);
  const label = `${what}: ${perBucket(histogram)
    .map((bar) => `${bar.label} ${bar.count}`)
    .join(", ")}`;
  return (
    <div className="insights-chart">
      <canvas ref={ref} role="img" aria-label={label} />
    </div>
  );
}
