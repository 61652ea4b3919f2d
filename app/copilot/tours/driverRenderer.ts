import { driver, type DriveStep } from "driver.js";
import { waitForElement } from "../lib/dom";
import { FLOWS } from "./flows";
import {
  UnknownFlow,
  type TourAbandonReason,
  type TourCallbacks,
  type TourEnd,
  type TourHandle,
  type TourRenderer,
} from "./renderer";

/** How long a step waits for its element to render (the ⋯ menu's portal, the bulk toolbar). */
const ELEMENT_WAIT_MS = 5000;

/**
 * The bundled renderer: driver.js (MIT), each step advancing on a click of its element.
 *
 * driver.js does the spotlight; this maps a flow to its config and its hooks to the tour
 * lifecycle. The click listener is ours, attached when a step starts: driver.js's own
 * advance-on-click ignores clicks during its ~400 ms highlight animation, and a quick user
 * would be stuck. Arrow keys are off (they would skip a click the next step depends on);
 * Esc closes the tour.
 *
 * Waiting for a step's element is ours too. driver.js 1.8.0 has a `waitForElement` option,
 * but when that wait runs out it shows the step anyway, as a centred popover with nothing
 * highlighted, and no hook says why: a click-to-advance tour would be stuck on it. So each
 * step's element is polled for before driver.js is moved to it, and one that never appears
 * ends the tour as `element_missing`.
 */
export function createDriverRenderer(): TourRenderer {
  return {
    name: "driver.js",
    async start(flowId: string, callbacks: TourCallbacks): Promise<TourHandle> {
      const flow = FLOWS[flowId];
      if (!flow) throw new UnknownFlow(flowId, "driver.js");
      const steps: DriveStep[] = flow.steps.map((step) => ({
        element: step.element,
        popover: { title: step.title, description: step.description, side: step.side, align: "start" },
      }));
      /** The 1-based step the user is on: on screen, or being waited for after the one before was done. */
      let current = 1;
      let ended = false;
      let detachClick: (() => void) | null = null;
      const waiting = new AbortController();

      const end = (how: TourEnd) => {
        if (ended) return;
        ended = true;
        waiting.abort();
        detachClick?.();
        document.removeEventListener("keydown", onEscape, true);
        if (tour.isActive()) tour.destroy();
        callbacks.onEnd(how);
      };
      const abandon = (reason: TourAbandonReason) => end({ outcome: "abandoned", reason, step: current });

      const show = async (index: number) => {
        current = index + 1;
        const found = await waitForElement(flow.steps[index].element, ELEMENT_WAIT_MS, waiting.signal).then(
          () => true,
          () => false,
        );
        if (ended) return;
        if (!found) abandon("element_missing");
        else if (tour.isActive()) tour.moveTo(index);
        else tour.drive(index);
      };

      const advanceOnClick = (element: Element, index: number) => {
        const onClick = () => {
          detachClick?.();
          callbacks.onStep(index + 1);
          // After the app's own handler for this click (React listens at the root).
          window.setTimeout(() => {
            if (index === steps.length - 1) end({ outcome: "completed", step: steps.length });
            else void show(index + 1);
          }, 0);
        };
        element.addEventListener("click", onClick);
        detachClick = () => {
          element.removeEventListener("click", onClick);
          detachClick = null;
        };
      };

      const onEscape = (event: KeyboardEvent) => {
        if (event.key === "Escape" && tour.isActive()) abandon("closed");
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
        // With this hook set, driver.js asks before closing (×, a click outside) instead of
        // closing, and asks even mid-transition, when it would skip onDestroyed.
        onDestroyStarted: () => abandon("closed"),
      });

      document.addEventListener("keydown", onEscape, true);
      void show(0);
      return { stop: abandon };
    },
  };
}
