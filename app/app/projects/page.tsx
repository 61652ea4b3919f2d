import type { Metadata } from "next";
import { ProjectsTable } from "@/components/ProjectsTable";

export const metadata: Metadata = { title: "Projects · Acme Projects" };

export default function ProjectsPage() {
  return <ProjectsTable />;
}
