// The login form's own checks, as in the seed; the server's answer decides.
// Pure: no DOM, so Node can test it too.

export const NICKNAME_MAX = 32;
export const MESSAGE_MAX = 2000;

// The seed's e-mail pattern.
const EMAIL =
  /^(([^<>()[\]\\.,;:\s@"]+(\.[^<>()[\]\\.,;:\s@"]+)*)|(".+"))@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\])|(([a-zA-Z\-0-9]+\.)+[a-zA-Z]{2,}))$/;
const CONTROL = /\p{Cc}/u;

/** A problem with the nickname, or null. `taken` is the name of the person already in. */
export function nicknameProblem(raw, taken) {
  const name = raw.trim();
  const length = [...name].length;
  if (length === 0) return "Please enter your name.";
  if (length > NICKNAME_MAX) return `A name has at most ${NICKNAME_MAX} characters.`;
  if (CONTROL.test(name)) return "A name cannot contain control characters.";
  if (taken && taken.toLowerCase() === name.toLowerCase()) {
    return `There already is a “${taken}” in this room: pick another name.`;
  }
  return null;
}

/** A problem with the e-mail address, or null. */
export function emailProblem(raw) {
  return EMAIL.test(raw.trim()) ? null : "Please enter a valid e-mail address.";
}

/** A problem with a message about to be sent, or null. */
export function messageProblem(text) {
  if (text.trim().length === 0) return "A message cannot be blank.";
  if ([...text].length > MESSAGE_MAX) return `A message has at most ${MESSAGE_MAX} characters.`;
  return null;
}
