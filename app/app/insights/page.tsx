import type { Metadata } from "next";
import { InsightsView } from "@/copilot/insights/InsightsView";
import { funnelQuery, loadFunnel } from "@/copilot/insights/loadFunnel";

export const metadata: Metadata = { title: "Insights · Acme Projects" };

// Fresh numbers on every visit, fetched here so the insights token never reaches the browser.
export const dynamic = "force-dynamic";

type SearchParams = Promise<Record<string, string | string[] | undefined>>;

export default async function InsightsPage({ searchParams }: { searchParams: SearchParams }) {
  const query = funnelQuery(await searchParams);
  const result = await loadFunnel(query);
  return <InsightsView result={result} query={query} />;
}
