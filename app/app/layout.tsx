import type { Metadata } from "next";
import type { ReactNode } from "react";
import "driver.js/dist/driver.css";
import "./globals.css";
import "@/copilot/copilot.css";
import { AppHeader } from "@/components/AppHeader";
import { ProjectsProvider } from "@/components/ProjectsStore";
import { ChatWidgetProvider } from "@/copilot/components/ChatWidget";
import { CopilotConfigProvider } from "@/copilot/components/CopilotConfigContext";
import { PostHogTracker } from "@/copilot/components/PostHogTracker";
import { ProactiveToast } from "@/copilot/components/ProactiveToast";
import { loadCopilotConfig } from "@/copilot/lib/config";
import { loadSignedInUser } from "@/lib/config";

export const metadata: Metadata = {
  title: "Acme Projects",
  description: "Projects workspace with a proactive assistant",
};

// The signed-in user and the copilot URL are read per request.
export const dynamic = "force-dynamic";

export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await loadSignedInUser();
  const config = loadCopilotConfig(user);
  return (
    <html lang="en">
      <body>
        <CopilotConfigProvider config={config}>
          <ProjectsProvider userId={user.id}>
            <ChatWidgetProvider>
              <PostHogTracker />
              <AppHeader user={user} />
              <main className="page">{children}</main>
              <ProactiveToast />
            </ChatWidgetProvider>
          </ProjectsProvider>
        </CopilotConfigProvider>
      </body>
    </html>
  );
}
