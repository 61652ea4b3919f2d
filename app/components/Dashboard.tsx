"use client";

import Link from "next/link";
import { PRIORITIES, STATUSES } from "@/lib/projects";
import { useProjects } from "./ProjectsStore";

/** /dashboard: where the portfolio stands, and what changed in this session. */
export function Dashboard() {
  const { projects } = useProjects();
  const byStatus = STATUSES.map((status) => ({ status, count: projects.filter((p) => p.status === status).length }));
  const byPriority = PRIORITIES.map((priority) => ({
    priority,
    count: projects.filter((p) => p.priority === priority).length,
  }));
  const recent = projects
    .filter((project) => project.updatedAt !== null)
    .sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0))
    .slice(0, 6);

  return (
    <div className="dashboard">
      <h1>Dashboard</h1>
      <div className="stat-grid">
        {byStatus.map(({ status, count }) => (
          <div key={status} className="card stat">
            <span className="stat-label">{status}</span>
            <span className="stat-value">{count}</span>
          </div>
        ))}
      </div>
      <div className="dashboard-columns">
        <section className="card" aria-labelledby="priority-title">
          <h2 id="priority-title">By priority</h2>
          <ul className="bars">
            {byPriority.map(({ priority, count }) => (
              <li key={priority}>
                <span className="bar-label">{priority}</span>
                <span className="bar" aria-hidden="true">
                  <span className={`bar-fill priority--${priority.toLowerCase()}`} style={{ width: `${(100 * count) / projects.length}%` }} />
                </span>
                <span className="bar-count">{count}</span>
              </li>
            ))}
          </ul>
        </section>
        <section className="card" aria-labelledby="recent-title">
          <h2 id="recent-title">Updated this session</h2>
          {recent.length === 0 ? (
            <p className="muted">
              Nothing yet. Changes you make on <Link href="/projects">Projects</Link> show up here.
            </p>
          ) : (
            <ul className="recent">
              {recent.map((project) => (
                <li key={project.id}>
                  <span className="mono">{project.id}</span> {project.name}
                  <span className={`priority priority--${project.priority.toLowerCase()}`}>{project.priority}</span>
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </div>
  );
}
