/**
 * The tours the bundled renderer can run, by flow id (proactive.yml `tours[].flow_id`).
 * Each step advances when its element is clicked; an element that appears only after the
 * previous click (the ⋯ menu renders in a portal) is waited for.
 */
export type TourStep = {
  element: string;
  title: string;
  description: string;
  /** Where the popover sits, clear of what the user clicks next. */
  side: "top" | "right" | "bottom" | "left";
};
export type TourFlow = { id: string; name: string; steps: readonly TourStep[] };

export const FLOWS: Readonly<Record<string, TourFlow>> = {
  "bulk-edit-projects": {
    id: "bulk-edit-projects",
    name: "Bulk edit projects",
    steps: [
      {
        element: "#projects-table-options",
        title: "Table options",
        description: "Click the ⋯ icon to open the table-options menu — bulk edit hides here.",
        side: "left",
      },
      {
        element: "#projects-bulk-edit-toggle",
        title: "Bulk edit",
        description: "Pick “Bulk edit” — checkboxes will appear on every row.",
        side: "left",
      },
      {
        element: "#project-checkbox-P-1042",
        title: "Select projects",
        description: "Tick the projects you want to update.",
        side: "right",
      },
      {
        element: "#bulk-apply",
        title: "Apply to all at once",
        description:
          "Pick the new priority in the floating toolbar, then click here — all selected projects update at once.",
        side: "top",
      },
    ],
  },
};
