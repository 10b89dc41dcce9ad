// Relative times for the conversation: "now", "3 min ago", "2 h ago", "yesterday"…
// Pure: no DOM, so Node can test it too.

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** How long ago `ts` (ms since the epoch) was, seen at `now`, in a few characters. */
export function relativeTime(ts, now = Date.now()) {
  const ago = Math.max(0, now - ts);
  if (ago < 45 * 1000) return "now";
  if (ago < HOUR) return `${Math.max(1, Math.round(ago / MINUTE))} min ago`;
  if (ago < DAY) return `${Math.round(ago / HOUR)} h ago`;
  if (ago < 2 * DAY) return "yesterday";
  if (ago < 7 * DAY) return `${Math.floor(ago / DAY)} days ago`;
  return new Date(ts).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

/** The full local date and time, for the tooltip. */
export function fullTime(ts) {
  return new Date(ts).toLocaleString();
}
