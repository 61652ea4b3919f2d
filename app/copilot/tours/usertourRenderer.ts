import type { TourCallbacks, TourEnd, TourHandle, TourRenderer } from "./renderer";

/** How often the page asks Usertour whether the flow is still running. */
const RUNNING_POLL_MS = 1000;
/** A flow never seen running by then (not eligible, or already done) is taken as ended. */
const RUNNING_GRACE_MS = 10_000;

/**
 * Usertour (usertour.js), used when a Usertour token is configured: the flow id from the
 * offer is a Usertour flow id and Usertour renders it. usertour.js loads Usertour's script
 * from its cloud (or the host set in `window.USERTOURJS_ENV_VARS` for a self-hosted one).
 *
 * Usertour tells the page neither its steps nor how a flow ended (usertour.js documents no
 * event names for `on`): a finished flow and a closed one both just stop running
 * (`isStarted`). So no steps are reported and such an end is `unknown` (the server's tour
 * state ends; the offer's insights count no completion and no abandonment they cannot
 * know). A flow never seen running within the grace period ends the same way, so offers
 * are not held back. Only a stop the page asks for (the user navigated) has a known reason.
 */
export function createUsertourRenderer(token: string, user: { id: string; name: string | null }): TourRenderer {
  let ready: Promise<typeof import("usertour.js").default> | null = null;
  const load = () => {
    ready ??= import("usertour.js").then(async ({ default: usertour }) => {
      usertour.init(token);
      await usertour.identify(user.id, user.name ? { name: user.name } : {});
      return usertour;
    });
    return ready;
  };
  return {
    name: "usertour",
    async start(flowId: string, callbacks: TourCallbacks): Promise<TourHandle> {
      const usertour = await load();
      await usertour.start(flowId);

      let ended = false;
      let seenRunning = false;
      const startedAt = performance.now();
      const end = (how: TourEnd) => {
        if (ended) return;
        ended = true;
        window.clearInterval(poll);
        callbacks.onEnd(how);
      };
      const poll = window.setInterval(() => {
        if (usertour.isStarted(flowId)) seenRunning = true;
        else if (seenRunning || performance.now() - startedAt > RUNNING_GRACE_MS) end({ outcome: "unknown" });
      }, RUNNING_POLL_MS);

      return {
        stop: (reason) => {
          if (ended) return;
          usertour.endAll().catch((error: unknown) => console.warn("usertour endAll:", error));
          end({ outcome: "abandoned", reason, step: 1 });
        },
      };
    },
  };
}
