"use client";

import { useEffect, useRef, useState, type FormEvent } from "react";
import { PRIORITIES, type Priority, type Project } from "@/lib/projects";
import { ChoiceSelect } from "./ChoiceSelect";

/** The per-row editor: one project, its priority, "Save changes". */
export function EditProjectDialog({
  project,
  onSave,
  onClose,
}: {
  project: Project;
  onSave: (priority: Priority) => void;
  onClose: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [priority, setPriority] = useState<Priority>(project.priority);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSave(priority);
  };

  return (
    // Named by aria-label, not aria-labelledby: PostHog's autocapture records an element's
    // attributes, so "Save changes" is then known to be pressed in "Edit P-1044".
    <dialog ref={dialog} className="dialog" aria-label={`Edit ${project.id}`} onCancel={onClose}>
      <form onSubmit={submit}>
        <h2 id="edit-title" className="dialog-title">
          Edit {project.id}
        </h2>
        <p className="dialog-subtitle">{project.name}</p>
        <dl className="dialog-facts">
          <div>
            <dt>Owner</dt>
            <dd>{project.owner}</dd>
          </div>
          <div>
            <dt>Status</dt>
            <dd>{project.status}</dd>
          </div>
        </dl>
        <label className="field">
          <span>Priority</span>
          <ChoiceSelect id="edit-priority" value={priority} choices={PRIORITIES} onChange={setPriority} />
        </label>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" id="edit-save">
            Save changes
          </button>
        </div>
      </form>
    </dialog>
  );
}
