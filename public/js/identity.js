// What this browser remembers, in localStorage: the participant token (one per browser,
// across rooms: the server recognises the person by it) and, per room, the name and
// e-mail used there, so that a reload or a new tab takes the same seat back by itself.
// A browser that refuses storage (private mode) simply logs in again each time.

const TOKEN_KEY = "tete.token";
const ROOMS_KEY = "tete.rooms";
const LAST_KEY = "tete.last";

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or forbidden: remembering is a convenience, not a requirement.
  }
}

export function token() {
  const t = read(TOKEN_KEY);
  return typeof t === "string" && t ? t : null;
}

export function setToken(t) {
  if (typeof t === "string" && t) write(TOKEN_KEY, t);
}

/** `{user, email}` this browser used in `room`, or null. */
export function seatIn(room) {
  const rooms = read(ROOMS_KEY);
  const seat = rooms && typeof rooms === "object" ? rooms[room] : null;
  return seat && typeof seat.user === "string" && typeof seat.email === "string" ? seat : null;
}

export function rememberSeat(room, user, email) {
  const rooms = read(ROOMS_KEY);
  const next = rooms && typeof rooms === "object" ? rooms : {};
  next[room] = { user, email };
  write(ROOMS_KEY, next);
  write(LAST_KEY, { user, email });
}

export function forgetSeat(room) {
  const rooms = read(ROOMS_KEY);
  if (rooms && typeof rooms === "object" && room in rooms) {
    delete rooms[room];
    write(ROOMS_KEY, rooms);
  }
}

/** The name and e-mail used last, in any room: to prefill the login form. */
export function lastIdentity() {
  const last = read(LAST_KEY);
  return last && typeof last.user === "string" && typeof last.email === "string" ? last : null;
}
