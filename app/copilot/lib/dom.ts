/** Resolves with the first element matching `selector`, waiting up to `timeoutMs` for it. */
export function waitForElement(selector: string, timeoutMs: number): Promise<Element> {
  return waitFor(() => document.querySelector(selector), timeoutMs, `no ${selector} after ${timeoutMs} ms`);
}

/** Polls `probe` every animation frame until it returns a value, or rejects after `timeoutMs`. */
export function waitFor<T>(probe: () => T | null | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + timeoutMs;
    const check = () => {
      const value = probe();
      if (value !== null && value !== undefined) resolve(value);
      else if (performance.now() > deadline) reject(new Error(what));
      else requestAnimationFrame(check);
    };
    check();
  });
}
