"use client";

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { STATUSES, type Priority, type Project, type Status } from "@/lib/projects";
import { BulkEditToolbar } from "./BulkEditToolbar";
import { ChoiceSelect } from "./ChoiceSelect";
import { EditProjectDialog } from "./EditProjectDialog";
import { KebabIcon, PencilIcon } from "./icons";
import { useProjects } from "./ProjectsStore";
import { TableOptionsMenu, type TableOption } from "./TableOptionsMenu";

type StatusFilter = Status | "All";

/** /projects: the list, a status filter, per-row Edit, and bulk edit behind the ⋯ menu. */
export function ProjectsTable() {
  const { projects, setPriority } = useProjects();
  const [status, setStatus] = useState<StatusFilter>("All");
  const [editing, setEditing] = useState<Project | null>(null);
  const [menuOpen, setMenuOpen] = useState(false);
  const [bulk, setBulk] = useState(false);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [notice, setNotice] = useState<string | null>(null);
  const optionsButton = useRef<HTMLButtonElement>(null);

  const visible = useMemo(
    () => (status === "All" ? projects : projects.filter((project) => project.status === status)),
    [projects, status],
  );
  const allVisibleSelected = visible.length > 0 && visible.every((project) => selected.has(project.id));

  // "Apply to N" acts on what is on screen: a row the filter hides leaves the selection.
  useEffect(() => {
    const shown = new Set(visible.map((project) => project.id));
    setSelected((current) => {
      const kept = [...current].filter((id) => shown.has(id));
      return kept.length === current.size ? current : new Set(kept);
    });
  }, [visible]);

  const toggle = (id: string) =>
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const toggleAllVisible = () =>
    setSelected(allVisibleSelected ? new Set() : new Set(visible.map((project) => project.id)));

  const exitBulk = () => {
    setBulk(false);
    setSelected(new Set());
  };

  const applyBulk = (priority: Priority) => {
    const ids = [...selected];
    setPriority(ids, priority);
    setNotice(`Priority set to ${priority} on ${ids.length} project${ids.length === 1 ? "" : "s"}.`);
    exitBulk();
  };

  const saveEdit = (priority: Priority) => {
    if (editing === null) return;
    setPriority([editing.id], priority);
    setNotice(`${editing.id} saved.`);
    setEditing(null);
  };

  const closeMenu = useCallback(() => setMenuOpen(false), []);
  const options: TableOption[] = [
    {
      id: "projects-bulk-edit-toggle",
      label: bulk ? "Exit bulk edit" : "Bulk edit",
      onSelect: () => (bulk ? exitBulk() : setBulk(true)),
    },
    { id: "projects-export-csv", label: "Export CSV", onSelect: () => downloadCsv(visible) },
  ];

  return (
    <section className="card" aria-labelledby="projects-title">
      <div className="card-header">
        <div>
          <h1 id="projects-title">Projects</h1>
          <p className="muted">
            {visible.length} of {projects.length} projects
          </p>
        </div>
        <div className="table-controls">
          <label className="field field--inline">
            <span>Status</span>
            <ChoiceSelect<StatusFilter> id="projects-status-filter" value={status} choices={STATUSES} onChange={setStatus}>
              <option value="All">All statuses</option>
            </ChoiceSelect>
          </label>
          <button
            ref={optionsButton}
            type="button"
            id="projects-table-options"
            className="icon-button"
            aria-label="Table options"
            aria-haspopup="menu"
            aria-expanded={menuOpen}
            onClick={() => setMenuOpen((open) => !open)}
          >
            <KebabIcon />
          </button>
          {menuOpen && <TableOptionsMenu anchor={optionsButton} options={options} onClose={closeMenu} />}
        </div>
      </div>

      <p className="notice" role="status">
        {notice}
      </p>

      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              {bulk && (
                <th className="col-check">
                  <input
                    type="checkbox"
                    aria-label="Select all visible projects"
                    checked={allVisibleSelected}
                    onChange={toggleAllVisible}
                  />
                </th>
              )}
              <th>ID</th>
              <th>Name</th>
              <th>Owner</th>
              <th>Status</th>
              <th>Priority</th>
              <th>Due</th>
              <th className="col-actions">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {visible.map((project) => (
              <tr key={project.id} data-project-id={project.id} className={selected.has(project.id) ? "row--selected" : ""}>
                {bulk && (
                  <td className="col-check">
                    <input
                      type="checkbox"
                      id={`project-checkbox-${project.id}`}
                      className="project-checkbox"
                      aria-label={`Select ${project.id} ${project.name}`}
                      checked={selected.has(project.id)}
                      onChange={() => toggle(project.id)}
                    />
                  </td>
                )}
                <td className="mono">{project.id}</td>
                <td>{project.name}</td>
                <td>{project.owner}</td>
                <td>
                  <span className={`status status--${slug(project.status)}`}>{project.status}</span>
                </td>
                <td>
                  <span className={`priority priority--${slug(project.priority)}`} data-priority={project.priority}>
                    {project.priority}
                  </span>
                </td>
                <td>{formatDate(project.due)}</td>
                <td className="col-actions">
                  <button
                    type="button"
                    className="btn btn-small"
                    data-edit={project.id}
                    aria-label={`Edit ${project.id}`}
                    onClick={() => setEditing(project)}
                  >
                    <PencilIcon />
                    Edit
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      {bulk && <BulkEditToolbar selectedCount={selected.size} onApply={applyBulk} onCancel={exitBulk} />}
      {editing && <EditProjectDialog key={editing.id} project={editing} onSave={saveEdit} onClose={() => setEditing(null)} />}
    </section>
  );
}

function slug(value: string): string {
  return value.toLowerCase().replace(/\s+/g, "-");
}

function formatDate(iso: string): string {
  return new Date(`${iso}T00:00:00Z`).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
}

function downloadCsv(projects: readonly Project[]): void {
  const header = ["id", "name", "owner", "status", "priority", "due"];
  const quote = (value: string) => `"${value.replace(/"/g, '""')}"`;
  const rows = projects.map((p) => [p.id, p.name, p.owner, p.status, p.priority, p.due].map(quote).join(","));
  const url = URL.createObjectURL(new Blob([[header.join(","), ...rows].join("\n")], { type: "text/csv" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: "projects.csv" });
  link.click();
  URL.revokeObjectURL(url);
}
