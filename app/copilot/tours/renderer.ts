/** What the toast's "Show me" needs from a tour renderer, whichever one runs the flow. */

/** Why a tour ended before its last step was done. */
export type TourAbandonReason = "closed" | "element_missing" | "navigated";

/**
 * How a tour ended. Step numbers are 1-based throughout this interface, as they go on the
 * wire; `step` is the number of steps when completed, else the step the user was on (not
 * yet done) when it ended.
 */
export type TourEnd =
  | { outcome: "completed"; step: number }
  | { outcome: "abandoned"; reason: TourAbandonReason; step: number }
  // The renderer saw the tour go but cannot tell how (Usertour): the server's session state
  // is brought back in step; the offer's insights record no guess.
  | { outcome: "unknown" };

export type TourCallbacks = {
  /** The user did step `step` (1-based): clicked its element. */
  onStep: (step: number) => void;
  /** The tour is gone: called once, however it ended (including through `stop`). */
  onEnd: (end: TourEnd) => void;
};

/** A running tour, for the page to end it (e.g. the user navigated elsewhere). */
export type TourHandle = {
  /** Ends the tour now as abandoned for `reason`; nothing if it has already ended. */
  stop: (reason: TourAbandonReason) => void;
};

export interface TourRenderer {
  readonly name: string;
  /** Resolves once the tour is under way; rejects if it cannot start at all. */
  start(flowId: string, callbacks: TourCallbacks): Promise<TourHandle>;
}

export class UnknownFlow extends Error {
  constructor(flowId: string, renderer: string) {
    super(`the ${renderer} tour renderer has no flow ${JSON.stringify(flowId)}`);
    this.name = "UnknownFlow";
  }
}
