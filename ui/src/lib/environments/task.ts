// Helpers of the environment forms.

/** Split a requirements input ("numpy  pandas>=2\nrequests") into items. */
export function splitRequirements(text: string): string[] {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}
