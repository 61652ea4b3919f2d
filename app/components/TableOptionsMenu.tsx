"use client";

import { useEffect, useLayoutEffect, useRef, useState, type RefObject } from "react";
import { createPortal } from "react-dom";

export type TableOption = { id: string; label: string; onSelect: () => void };

/**
 * The table's ⋯ dropdown. It renders in a portal on <body> (so the table's overflow
 * never clips it), positioned under its button; a click outside or Esc closes it.
 */
export function TableOptionsMenu({
  anchor,
  options,
  onClose,
}: {
  anchor: RefObject<HTMLButtonElement | null>;
  options: readonly TableOption[];
  onClose: () => void;
}) {
  const menu = useRef<HTMLDivElement>(null);
  const [position, setPosition] = useState<{ top: number; right: number } | null>(null);

  useLayoutEffect(() => {
    const rect = anchor.current?.getBoundingClientRect();
    if (rect) setPosition({ top: rect.bottom + window.scrollY + 6, right: document.documentElement.clientWidth - rect.right });
  }, [anchor]);

  useEffect(() => {
    menu.current?.querySelector<HTMLElement>("[role='menuitem']")?.focus();
    const onPointerDown = (event: PointerEvent) => {
      const target = event.target as Node;
      if (!menu.current?.contains(target) && !anchor.current?.contains(target)) onClose();
    };
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key === "Escape") {
        event.preventDefault();
        onClose();
        anchor.current?.focus();
      }
    };
    document.addEventListener("pointerdown", onPointerDown);
    document.addEventListener("keydown", onKeyDown);
    return () => {
      document.removeEventListener("pointerdown", onPointerDown);
      document.removeEventListener("keydown", onKeyDown);
    };
  }, [anchor, onClose]);

  if (position === null) return null;
  return createPortal(
    <div ref={menu} role="menu" aria-label="Table options" className="menu" style={{ top: position.top, right: position.right }}>
      {options.map((option) => (
        <button
          key={option.id}
          id={option.id}
          type="button"
          role="menuitem"
          className="menu-item"
          onClick={() => {
            onClose();
            option.onSelect();
          }}
        >
          {option.label}
        </button>
      ))}
    </div>,
    document.body,
  );
}
