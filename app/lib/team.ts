/** The workspace's people: project owners, and who the demo can sign in as. */
export type TeamMember = { id: string; name: string; email: string };

export const TEAM: readonly TeamMember[] = [
  { id: "u-1001", name: "Dana Whitfield", email: "dana@acme.test" },
  { id: "u-1002", name: "Marcus Oyelaran", email: "marcus@acme.test" },
  { id: "u-1003", name: "Priya Natarajan", email: "priya@acme.test" },
  { id: "u-1004", name: "Tomás Herrera", email: "tomas@acme.test" },
  { id: "u-1005", name: "Ingrid Solberg", email: "ingrid@acme.test" },
];

export function memberById(id: string): TeamMember | undefined {
  return TEAM.find((member) => member.id === id);
}
