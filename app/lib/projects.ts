/** The projects list: its types and the seed every browser session starts from. */
export const STATUSES = ["Planning", "Active", "On hold", "Completed"] as const;
export const PRIORITIES = ["Low", "Medium", "High", "Urgent"] as const;

export type Status = (typeof STATUSES)[number];
export type Priority = (typeof PRIORITIES)[number];

export type Project = {
  id: string;
  name: string;
  owner: string;
  status: Status;
  priority: Priority;
  due: string; // ISO date
  updatedAt: number | null; // epoch millis of the last edit in this session
};

const seed = (id: string, name: string, owner: string, status: Status, priority: Priority, due: string): Project => ({
  id,
  name,
  owner,
  status,
  priority,
  due,
  updatedAt: null,
});

export const SEED_PROJECTS: readonly Project[] = [
  seed("P-1042", "Checkout redesign", "Dana Whitfield", "Active", "Medium", "2026-12-12"),
  seed("P-1043", "Billing API v2", "Marcus Oyelaran", "Active", "High", "2026-12-19"),
  seed("P-1044", "Mobile onboarding flow", "Priya Natarajan", "Planning", "Medium", "2027-01-16"),
  seed("P-1045", "Search relevance tuning", "Tomás Herrera", "Active", "Low", "2026-12-05"),
  seed("P-1046", "SOC 2 evidence collection", "Ingrid Solberg", "On hold", "High", "2027-02-27"),
  seed("P-1047", "Partner portal", "Dana Whitfield", "Planning", "Low", "2027-03-13"),
  seed("P-1048", "Data warehouse migration", "Marcus Oyelaran", "Active", "Urgent", "2026-12-01"),
  seed("P-1049", "Help center refresh", "Priya Natarajan", "Completed", "Low", "2026-11-14"),
  seed("P-1050", "Usage-based pricing", "Tomás Herrera", "Planning", "High", "2027-01-30"),
  seed("P-1051", "Accessibility audit fixes", "Ingrid Solberg", "Active", "Medium", "2026-12-22"),
  seed("P-1052", "Churn early-warning model", "Dana Whitfield", "On hold", "Medium", "2027-02-06"),
  seed("P-1053", "EU data residency", "Marcus Oyelaran", "Active", "High", "2027-01-09"),
  seed("P-1054", "Design system tokens", "Priya Natarajan", "Completed", "Medium", "2026-10-31"),
  seed("P-1055", "Status page automation", "Tomás Herrera", "Planning", "Low", "2027-03-27"),
];
