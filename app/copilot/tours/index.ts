import type { CopilotConfig } from "../lib/config";
import { createDriverRenderer } from "./driverRenderer";
import type { TourRenderer } from "./renderer";
import { createUsertourRenderer } from "./usertourRenderer";

export type { TourAbandonReason, TourCallbacks, TourEnd, TourHandle, TourRenderer } from "./renderer";

/** Usertour when a token is configured, the bundled driver.js renderer otherwise. */
export function chooseTourRenderer(config: Pick<CopilotConfig, "usertourToken" | "user">): TourRenderer {
  return config.usertourToken ? createUsertourRenderer(config.usertourToken, config.user) : createDriverRenderer();
}
