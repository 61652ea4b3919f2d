import type { TourCallbacks, TourRenderer } from "./renderer";

/**
 * Usertour (usertour.js), used when a Usertour token is configured: the flow id from the
 * offer is a Usertour flow id and Usertour renders it. usertour.js loads Usertour's script
 * from its cloud (or the host set in `window.USERTOURJS_ENV_VARS` for a self-hosted one).
 * Usertour reports no per-step callbacks to the page, so only the start is tracked here;
 * the tour's engagement window on the server closes it if the page never says it ended.
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
    async start(flowId: string, _callbacks: TourCallbacks): Promise<void> {
      const usertour = await load();
      await usertour.start(flowId);
    },
  };
}

