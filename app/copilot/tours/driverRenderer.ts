import { driver, type DriveStep } from "driver.js";
import { FLOWS } from "./flows";
import { UnknownFlow, type TourCallbacks, type TourRenderer } from "./renderer";

/** How long a step waits for its element to render (the ⋯ menu's portal, the bulk toolbar). */
const ELEMENT_WAIT_MS = 5000;

/**
 * The bundled renderer: driver.js (MIT), each step advancing on a click of its element.
 *
 * driver.js does the spotlight and waits for a step's element to appear; this maps a flow
 * to its config and its hooks to the tour lifecycle. The click listener is ours, attached
 * when a step starts: driver.js's own advance-on-click ignores clicks during its ~400 ms
 * highlight animation, and a quick user would be stuck. Arrow keys are off (they would
 * skip a click the next step depends on); Esc closes the tour.
 */
export function createDriverRenderer(): TourRenderer {
  return {
    name: "driver.js",
    async start(flowId: string, callbacks: TourCallbacks): Promise<void> {
      const flow = FLOWS[flowId];
      if (!flow) throw new UnknownFlow(flowId, "driver.js");
      let completed = false;
      let detachClick: (() => void) | null = null;

      const steps: DriveStep[] = flow.steps.map((step) => ({
        element: step.element,
        waitForElement: ELEMENT_WAIT_MS,
        popover: { title: step.title, description: step.description, side: step.side, align: "start" },
      }));

      const advanceOnClick = (element: Element, index: number) => {
        const onClick = () => {
          detachClick?.();
          callbacks.onStep(index);
          const last = index === steps.length - 1;
          if (last) completed = true;
          // After the app's own handler for this click (React listens at the root).
          window.setTimeout(() => {
            tour.moveNext(); // past the last step this ends the tour
            if (last) finish();
          }, 0);
        };
        element.addEventListener("click", onClick);
        detachClick = () => {
          element.removeEventListener("click", onClick);
          detachClick = null;
        };
      };

      let ended = false;
      const finish = () => {
        if (ended) return;
        ended = true;
        detachClick?.();
        document.removeEventListener("keydown", onEscape, true);
        callbacks.onEnd(completed ? "completed" : "dismissed");
      };

      const onEscape = (event: KeyboardEvent) => {
        if (event.key !== "Escape" || !tour.isActive()) return;
        tour.destroy();
        finish(); // driver.js skips onDestroyed when destroyed mid-transition
      };

      const tour = driver({
        steps,
        animate: !window.matchMedia("(prefers-reduced-motion: reduce)").matches,
        allowKeyboardControl: false,
        showButtons: ["close"],
        showProgress: true,
        progressText: "Step {{current}} of {{total}}",
        stagePadding: 6,
        popoverClass: "tour-popover",
        onHighlightStarted: (element, _step, { state }) => {
          detachClick?.();
          if (element) advanceOnClick(element, state.activeIndex ?? 0);
        },
        onDestroyed: finish,
      });

      document.addEventListener("keydown", onEscape, true);
      tour.drive();
    },
  };
}
