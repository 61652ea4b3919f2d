/** Icons are decorative and never a click target: a click lands on the button, so
 *  click-to-advance tours (which compare the click target) see the element they expect. */
const iconProps = {
  "aria-hidden": true,
  focusable: false,
  className: "icon",
  style: { pointerEvents: "none" },
  viewBox: "0 0 24 24",
  width: 18,
  height: 18,
} as const;

export function KebabIcon() {
  return (
    <svg {...iconProps} fill="currentColor">
      <circle cx="5" cy="12" r="2" />
      <circle cx="12" cy="12" r="2" />
      <circle cx="19" cy="12" r="2" />
    </svg>
  );
}

export function PencilIcon() {
  return (
    <svg {...iconProps} fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
      <path d="M12 20h9" />
      <path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z" />
    </svg>
  );
}
