"use client";

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { SEED_PROJECTS, type Priority, type Project } from "@/lib/projects";

/**
 * The projects and their edits. Edits persist in this browser tab for the session
 * (sessionStorage, per user): a reload keeps them, a new tab starts from the seed.
 */
type ProjectsStore = {
  projects: readonly Project[];
  setPriority: (ids: readonly string[], priority: Priority) => void;
};

const ProjectsContext = createContext<ProjectsStore | null>(null);

function storageKey(userId: string): string {
  return `projects:v1:${userId}`;
}

function loadProjects(userId: string): readonly Project[] {
  try {
    const saved = window.sessionStorage.getItem(storageKey(userId));
    if (saved) {
      const parsed = JSON.parse(saved) as Project[];
      if (Array.isArray(parsed) && parsed.length > 0) return parsed;
    }
  } catch {
    // A corrupt or unavailable store falls back to the seed rather than breaking the page.
  }
  return SEED_PROJECTS;
}

export function ProjectsProvider({ userId, children }: { userId: string; children: ReactNode }) {
  const [projects, setProjects] = useState<readonly Project[]>(SEED_PROJECTS);
  const [loaded, setLoaded] = useState(false);

  // sessionStorage exists only in the browser: read it after hydration.
  useEffect(() => {
    setProjects(loadProjects(userId));
    setLoaded(true);
  }, [userId]);

  useEffect(() => {
    if (!loaded) return;
    try {
      window.sessionStorage.setItem(storageKey(userId), JSON.stringify(projects));
    } catch {
      // Private mode or a full quota: edits still live until the tab closes.
    }
  }, [loaded, projects, userId]);

  const setPriority = useCallback((ids: readonly string[], priority: Priority) => {
    const changed = new Set(ids);
    const now = Date.now();
    setProjects((current) =>
      current.map((project) => (changed.has(project.id) ? { ...project, priority, updatedAt: now } : project)),
    );
  }, []);

  const store = useMemo(() => ({ projects, setPriority }), [projects, setPriority]);
  return <ProjectsContext.Provider value={store}>{children}</ProjectsContext.Provider>;
}

export function useProjects(): ProjectsStore {
  const store = useContext(ProjectsContext);
  if (store === null) throw new Error("useProjects must be used inside <ProjectsProvider>");
  return store;
}
