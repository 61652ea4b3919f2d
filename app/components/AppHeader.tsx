"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import type { CopilotUser } from "@/copilot/lib/config";
import { TEAM } from "@/lib/team";

const NAV = [
  { href: "/projects", label: "Projects" },
  { href: "/dashboard", label: "Dashboard" },
  { href: "/insights", label: "Insights" },
];

/** Top bar: navigation, and (demo only) who you are signed in as. */
export function AppHeader({ user }: { user: CopilotUser }) {
  const pathname = usePathname();

  const switchUser = (id: string) => {
    document.cookie = `demo_user=${encodeURIComponent(id)}; path=/; SameSite=Lax`;
    window.location.reload();
  };

  return (
    <header className="app-header">
      <Link href="/projects" className="brand">
        <span className="brand-mark" aria-hidden="true">
          ▲
        </span>
        Acme Projects
      </Link>
      <nav aria-label="Main">
        {NAV.map((item) => (
          <Link
            key={item.href}
            href={item.href}
            className={pathname.startsWith(item.href) ? "nav-link nav-link--active" : "nav-link"}
            aria-current={pathname.startsWith(item.href) ? "page" : undefined}
          >
            {item.label}
          </Link>
        ))}
      </nav>
      <label className="user-switch">
        <span className="visually-hidden">Signed in as</span>
        <select value={user.id} onChange={(event) => switchUser(event.target.value)} aria-label="Signed in as">
          {TEAM.some((member) => member.id === user.id) ? null : <option value={user.id}>{user.name ?? user.id}</option>}
          {TEAM.map((member) => (
            <option key={member.id} value={member.id}>
              {member.name}
            </option>
          ))}
        </select>
      </label>
    </header>
  );
}
