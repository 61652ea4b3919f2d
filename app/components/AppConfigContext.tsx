"use client";

import { createContext, useContext, type ReactNode } from "react";
import type { AppConfig } from "@/lib/config";

const AppConfigContext = createContext<AppConfig | null>(null);

export function AppConfigProvider({ config, children }: { config: AppConfig; children: ReactNode }) {
  return <AppConfigContext.Provider value={config}>{children}</AppConfigContext.Provider>;
}

export function useAppConfig(): AppConfig {
  const config = useContext(AppConfigContext);
  if (config === null) throw new Error("useAppConfig must be used inside <AppConfigProvider>");
  return config;
}
