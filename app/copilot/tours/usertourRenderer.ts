import type { TourAbandonReason, TourCallbacks, TourHandle, TourRenderer } from "./renderer";

/** How often the page asks Usertour whether the flow is still running. */
const RUNNING_POLL_MS = 1000;
/** A flow never seen running by then (not eligible, or already done) is left to the server. */
const RUNNING_GRACE_MS = 10_000;

/**
 * Usertour (usertour.js), used when a Usertour token is configured: the flow id from the
 * offer is a Usertour flow id and Usertour renders it. usertour.js loads Usertour's script
 * from its cloud (or the host set in `window.USERTOURJS_ENV_VARS` for a self-hosted one).
 *
 * Usertour tells the page neither its steps nor how a flow ended (usertour.js documents no
 * event names for `on`), so no steps are reported, and a flow seen running and then no
 * longer running (`isStarted`) is reported as abandoned, `closed`, at step 1: a finished
 * flow looks the same from here. If it is never seen running, the tour's engagement window
 * on the server closes it.
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
      const end = (reason: TourAbandonReason) => {
        if (ended) return;
        ended = true;
        window.clearInterval(poll);
        callbacks.onEnd({ outcome: "abandoned", reason, step: 1 });
      };
      const poll = window.setInterval(() => {
        if (usertour.isStarted(flowId)) seenRunning = true;
        else if (seenRunning) end("closed");
        else if (performance.now() - startedAt > RUNNING_GRACE_MS) window.clearInterval(poll);
      }, RUNNING_POLL_MS);

      return {
        stop: (reason) => {
          if (ended) return;
          usertour.endAll().catch((error: unknown) => console.warn("usertour endAll:", error));
          end(reason);
        },
      };
    },
  };
}
