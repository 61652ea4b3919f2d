"use client";

import type { ReactNode } from "react";

/** A <select> over a fixed list of string choices (priorities, statuses), typed by them. */
export function ChoiceSelect<T extends string>({
  id,
  value,
  choices,
  onChange,
  children,
}: {
  id: string;
  value: T;
  choices: readonly T[];
  onChange: (value: T) => void;
  /** Options placed before the choices, e.g. an "All" entry. */
  children?: ReactNode;
}) {
  return (
    <select id={id} name={id} value={value} onChange={(event) => onChange(event.target.value as T)}>
      {children}
      {choices.map((choice) => (
        <option key={choice} value={choice}>
          {choice}
        </option>
      ))}
    </select>
  );
}
