/** Durations in config and on the command line: seconds as a number, or "90s", "10m", "1h", "7d", "2w". */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function parseDuration(value: string | number): number | null {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : null;
  const m = /^(\d+)\s*([smhdw]?)$/.exec(value.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT_SECONDS[m[2] || "s"]!;
}

/** "1h", "2d 3h", "45s": short, for operators reading a report. */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return "0s";
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.length > 0 ? parts.join(" ") : "0s";
}

/** The clock watcher counts in: whole epoch seconds. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A time as ISO 8601 in UTC to the second ("2026-12-06T08:05:21Z"): the one form watcher prints and writes in JSON. */
export function iso(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}
