"use client";

import { useState } from "react";
import { PRIORITIES, type Priority } from "@/lib/projects";
import { ChoiceSelect } from "./ChoiceSelect";

/** Floats at the bottom while the table is in bulk-edit mode: one priority for all selected. */
export function BulkEditToolbar({
  selectedCount,
  onApply,
  onCancel,
}: {
  selectedCount: number;
  onApply: (priority: Priority) => void;
  onCancel: () => void;
}) {
  const [priority, setPriority] = useState<Priority>("High");
  return (
    <div className="bulk-toolbar" role="region" aria-label="Bulk edit">
      <span className="bulk-count">{selectedCount} selected</span>
      <label className="bulk-field">
        <span>Priority</span>
        <ChoiceSelect id="bulk-priority" value={priority} choices={PRIORITIES} onChange={setPriority} />
      </label>
      <button
        type="button"
        id="bulk-apply"
        className="btn btn-primary"
        disabled={selectedCount === 0}
        onClick={() => onApply(priority)}
      >
        Apply to {selectedCount}
      </button>
      <button type="button" className="btn btn-ghost" onClick={onCancel}>
        Cancel
      </button>
    </div>
  );
}
