import "server-only";
import { cookies } from "next/headers";
import type { CopilotUser } from "@/copilot/lib/config";
import { memberById } from "./team";

/**
 * The signed-in user, read per request. A real app takes the user from its session; the
 * demo lets you switch users with the `demo_user` cookie (the header's user menu sets it)
 * and otherwise signs in APP_USER_ID (u-1001).
 */
export const DEMO_USER_COOKIE = "demo_user";
const USER_ID_PATTERN = /^[A-Za-z0-9._@:-]{1,128}$/;

export async function loadSignedInUser(): Promise<CopilotUser> {
  const cookieUser = (await cookies()).get(DEMO_USER_COOKIE)?.value;
  const userId = cookieUser && USER_ID_PATTERN.test(cookieUser) ? cookieUser : process.env.APP_USER_ID || "u-1001";
  const member = memberById(userId);
  return { id: userId, name: member?.name ?? null, email: member?.email ?? null };
}
