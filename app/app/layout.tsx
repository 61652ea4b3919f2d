import type { Metadata } from "next";
import type { ReactNode } from "react";
import "driver.js/dist/driver.css";
import "./globals.css";
import { AppConfigProvider } from "@/components/AppConfigContext";
import { AppHeader } from "@/components/AppHeader";
import { ChatWidgetProvider } from "@/components/ChatWidget";
import { PostHogTracker } from "@/components/PostHogTracker";
import { ProactiveToast } from "@/components/ProactiveToast";
import { ProjectsProvider } from "@/components/ProjectsStore";
import { loadAppConfig } from "@/lib/config";

export const metadata: Metadata = {
  title: "Acme Projects",
  description: "Projects workspace with a proactive assistant",
};

// The signed-in user and the copilot URL are read per request.
export const dynamic = "force-dynamic";

export default async function RootLayout({ children }: { children: ReactNode }) {
  const config = await loadAppConfig();
  return (
    <html lang="en">
      <body>
        <AppConfigProvider config={config}>
          <ProjectsProvider userId={config.user.id}>
            <ChatWidgetProvider>
              <PostHogTracker />
              <AppHeader />
              <main className="page">{children}</main>
              <ProactiveToast />
            </ChatWidgetProvider>
          </ProjectsProvider>
        </AppConfigProvider>
      </body>
    </html>
  );
}
