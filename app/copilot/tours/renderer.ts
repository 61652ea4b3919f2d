/** What the toast's "Show me" needs from a tour renderer, whichever one runs the flow. */
export type TourEnd = "completed" | "dismissed";

export type TourCallbacks = {
  /** The user did step `index` (zero-based): clicked its element. */
  onStep: (index: number) => void;
  /** The tour is gone: every step done, or closed early (×, Esc, outside click). */
  onEnd: (how: TourEnd) => void;
};

export interface TourRenderer {
  readonly name: string;
  start(flowId: string, callbacks: TourCallbacks): Promise<void>;
}

export class UnknownFlow extends Error {
  constructor(flowId: string, renderer: string) {
    super(`the ${renderer} tour renderer has no flow ${JSON.stringify(flowId)}`);
    this.name = "UnknownFlow";
  }
}
