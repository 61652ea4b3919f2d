/** Resolves with the first element matching `selector`, waiting up to `timeoutMs` for it. */
export function waitForElement(selector: string, timeoutMs: number, signal?: AbortSignal): Promise<Element> {
  return waitFor(() => document.querySelector(selector), timeoutMs, `no ${selector} after ${timeoutMs} ms`, signal);
}

/**
 * Polls `probe` every animation frame until it returns a value, or rejects after `timeoutMs`
 * (or as soon as `signal` aborts, with its reason).
 */
export function waitFor<T>(
  probe: () => T | null | undefined,
  timeoutMs: number,
  what: string,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + timeoutMs;
    let frame = 0;
    const onAbort = () => {
      cancelAnimationFrame(frame);
      reject(signal?.reason);
    };
    const check = () => {
      const value = probe();
      if (value !== null && value !== undefined) {
        signal?.removeEventListener("abort", onAbort);
        resolve(value);
      } else if (performance.now() > deadline) {
        signal?.removeEventListener("abort", onAbort);
        reject(new Error(what));
      } else {
        frame = requestAnimationFrame(check);
      }
    };
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    check();
  });
}
