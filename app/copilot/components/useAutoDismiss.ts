"use client";

import { useEffect, useRef } from "react";

/**
 * Calls `onExpire` after `durationMs` of visible, unattended time: the countdown pauses
 * while `paused` (hovered or focused) and resumes with what was left. A new `key`
 * (another offer) restarts it.
 */
export function useAutoDismiss(key: string | null, durationMs: number, paused: boolean, onExpire: () => void): void {
  const remaining = useRef(durationMs);
  const expire = useRef(onExpire);
  expire.current = onExpire;

  useEffect(() => {
    remaining.current = durationMs;
  }, [key, durationMs]);

  useEffect(() => {
    if (key === null || paused) return;
    const startedAt = performance.now();
    const timer = window.setTimeout(() => expire.current(), remaining.current);
    return () => {
      window.clearTimeout(timer);
      remaining.current = Math.max(0, remaining.current - (performance.now() - startedAt));
    };
  }, [key, paused]);
}
