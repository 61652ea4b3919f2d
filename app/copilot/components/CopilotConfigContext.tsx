"use client";

import { createContext, useContext, type ReactNode } from "react";
import type { CopilotConfig } from "../lib/config";

const CopilotConfigContext = createContext<CopilotConfig | null>(null);

export function CopilotConfigProvider({ config, children }: { config: CopilotConfig; children: ReactNode }) {
  return <CopilotConfigContext.Provider value={config}>{children}</CopilotConfigContext.Provider>;
}

export function useCopilotConfig(): CopilotConfig {
  const config = useContext(CopilotConfigContext);
  if (config === null) throw new Error("useCopilotConfig must be used inside <CopilotConfigProvider>");
  return config;
}
