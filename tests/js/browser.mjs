// The real-browser test of the chat page, in headless Chromium driven by playwright-core.
//
//   node browser.mjs --base http://127.0.0.1:PORT [--screenshots DIR] [--chromium PATH]
//
// A creates a room from the home page, B opens its link in a second browser context,
// both log in, messages go both ways with names and avatars, a hostile message shows as
// text, "typing…" and "seen" show, C (a third context) gets "too many people", B leaves
// and A sees it; the same once more with the client forced onto HTTP long-polling.
// Then: a dropped connection shows "reconnecting…" and catches up by itself with no gap
// and no duplicate; a reload mid-conversation gives back the same seat and the
// conversation; with more than 50 messages, scrolling up loads the older ones.
//
// Every wait is bounded; the whole run is bounded too. Exit code 0 means everything
// passed; anything else prints what failed.

import { createHash } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

import { emailProblem, messageProblem, nicknameProblem } from "../../public/js/checks.js";
import { relativeTime } from "../../public/js/time.js";

/** One wait (an element, a state, a message) may take this long. */
const STEP_TIMEOUT_MS = 10_000;
/** The whole run may take this long. */
const TOTAL_TIMEOUT_MS = 240_000;
/** Between two sends of the bulk conversation: under the server's 10 messages/s. */
const BULK_SEND_PAUSE_MS = 130;
const BULK_MESSAGES = 62;

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    screenshots: { type: "string" },
    chromium: { type: "string", default: process.env.TETE_CHROMIUM || "/usr/bin/chromium" },
  },
});
if (!args.base) {
  console.error("usage: node browser.mjs --base http://127.0.0.1:PORT [--screenshots DIR]");
  process.exit(64);
}
const base = args.base.replace(/\/$/, "");
const shotsDir = args.screenshots ? path.resolve(args.screenshots) : null;

const watchdog = setTimeout(() => {
  console.error(`browser test: still running after ${TOTAL_TIMEOUT_MS / 1000} s, giving up`);
  process.exit(2);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function gravatar(email) {
  const hash = createHash("md5").update(email.trim().toLowerCase()).digest("hex");
  return `https://www.gravatar.com/avatar/${hash}?s=140&r=x&d=mm`;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function step(text) {
  console.log(`  · ${text}`);
}

/** Polls `probe` until it returns something truthy, for at most `timeout` ms. */
async function until(what, probe, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (${last.message})` : ""}`);
    }
    await sleep(100);
  }
}

// ---- people: one browser context each ---------------------------------------------

/** Every person opened so far, for the screenshots taken when a step fails. */
const everybody = [];

/**
 * A person at their own browser: a fresh context (own cookies and localStorage), one
 * page, and a record of what must not happen (dialogs, page errors) and of the
 * transports used.
 */
async function person(browser, name, { phone = false, blockWebSocket = false } = {}) {
  const context = await browser.newContext({
    viewport: phone ? { width: 360, height: 740 } : { width: 1000, height: 760 },
    deviceScaleFactor: 1,
    hasTouch: phone,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  // No internet here: avatars are checked by their URL, and refused at once.
  await context.route("https://www.gravatar.com/**", (route) => route.abort());
  if (blockWebSocket) {
    // As behind a proxy that refuses WebSocket: every attempt is closed at once.
    await context.routeWebSocket(/.*/, (ws) => ws.close({ code: 1008, reason: "blocked" }));
  }
  const page = await context.newPage();
  const who = { name, context, page, dialogs: [], errors: [], websockets: [], polls: 0 };
  everybody.push(who);
  page.on("dialog", (dialog) => {
    who.dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (error) => who.errors.push(error.message));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const url = msg.location()?.url || "";
    if (url.startsWith("https://www.gravatar.com/")) return;
    if (/Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_CONNECTION/.test(msg.text())) return;
    who.errors.push(msg.text());
  });
  page.on("websocket", (ws) => who.websockets.push(ws.url()));
  page.on("request", (req) => {
    if (req.url().includes("/socket.io/") && req.url().includes("transport=polling")) who.polls += 1;
  });
  return who;
}

function clean(who) {
  check(who.dialogs.length === 0, `${who.name}: a dialog opened: ${who.dialogs.join(" | ")}`);
  check(who.errors.length === 0, `${who.name}: errors in the page: ${who.errors.join(" | ")}`);
}

const stateOf = (who) => who.page.locator("#chat").getAttribute("data-state");

async function waitState(who, state, timeout = STEP_TIMEOUT_MS) {
  await until(`${who.name} to reach the "${state}" screen`, async () => (await stateOf(who)) === state, timeout).catch(
    async (e) => {
      throw new Error(`${e.message}; it shows "${await stateOf(who).catch(() => "?")}"`);
    },
  );
}

async function visibleText(who, selector) {
  const loc = who.page.locator(selector);
  await loc.waitFor({ state: "visible" });
  return (await loc.textContent()).trim();
}

async function shot(who, name) {
  if (!shotsDir) return;
  await who.page.screenshot({ path: path.join(shotsDir, `${name}.png`) });
}

async function logIn(who, user, email) {
  await who.page.locator("#login-name").fill(user);
  await who.page.locator("#login-email").fill(email);
  await who.page.locator("#login-submit").click();
}

async function say(who, text) {
  const box = who.page.locator("#composer-text");
  await box.fill(text);
  await box.press("Enter");
}

/** Messages on `who`'s screen: [{text, user, mine, seq, img, when, pending}]. */
function messages(who) {
  return who.page.$$eval("#messages > li", (items) =>
    items.map((li) => ({
      text: li.querySelector(".msg-text").textContent,
      user: li.querySelector(".msg-user").textContent,
      mine: li.classList.contains("mine"),
      seq: li.dataset.seq ? Number(li.dataset.seq) : null,
      img: li.querySelector(".avatar img").getAttribute("src"),
      when: li.querySelector("time").textContent,
      pending: li.classList.contains("pending") || li.classList.contains("failed"),
      failed: li.classList.contains("failed"),
      note: li.querySelector(".msg-note").textContent,
      seen: li.classList.contains("seen"),
    })),
  );
}

async function waitMessage(who, text, timeout = STEP_TIMEOUT_MS) {
  return until(
    `${who.name} to show the message ${JSON.stringify(text)}`,
    async () => (await messages(who)).find((m) => m.text === text && m.seq !== null),
    timeout,
  );
}

function noDuplicates(list, who) {
  const seqs = list.map((m) => m.seq).filter((s) => s !== null);
  check(new Set(seqs).size === seqs.length, `${who.name}: a message is shown twice: ${seqs.join(",")}`);
  for (let i = 1; i < seqs.length; i++) {
    check(seqs[i] > seqs[i - 1], `${who.name}: messages out of order: ${seqs.join(",")}`);
  }
}

// ---- the scenarios -----------------------------------------------------------------

const alice = { user: "Alice", email: "alice@example.com" };
const bob = { user: "Bob", email: "Bob@Example.com " };
const carol = { user: "Carol", email: "carol@example.com" };
const HOSTILE = "<img src=x onerror=alert(1)>";

/** The seed's whole flow; `mode` is "default" (WebSocket allowed) or "polling". */
async function twoPeopleChat(browser, mode) {
  const query = mode === "polling" ? "?transport=polling" : "";
  const tag = mode === "polling" ? "polling" : "ws";

  const a = await person(browser, "A");
  step("A opens the home page and creates a private room");
  await a.page.goto(`${base}/`);
  await a.page.getByRole("link", { name: "Create a private room" }).click();
  await a.page.waitForURL(/\/chat\/[A-Za-z0-9_-]{22,64}$/);
  const roomUrl = a.page.url();
  if (query) {
    await a.page.goto(roomUrl + query);
    // Only what the page forced onto long-polling did counts.
    a.websockets.length = 0;
    a.polls = 0;
  }

  await waitState(a, "connected");
  check((await visibleText(a, "#login-title")) === "Who are you?", "A is asked who they are");
  step("A's login form checks the name and the e-mail itself");
  await logIn(a, "   ", alice.email);
  check((await visibleText(a, "#login-error")).length > 0, "an empty name is refused on the client");
  await logIn(a, alice.user, "not-an-email");
  check((await visibleText(a, "#login-error")).includes("e-mail"), "a bad e-mail is refused on the client");
  await logIn(a, alice.user, alice.email);
  await waitState(a, "invite");
  check(await a.page.locator("#login-error").isHidden(), "the error is gone once logged in");

  step("A is told to invite somebody, with the room link and a copy button");
  const link = a.page.locator('[data-screen="invite"] .room-link');
  check((await link.inputValue()) === roomUrl, `the invite link is the room's URL (${await link.inputValue()})`);
  await a.page.locator('[data-screen="invite"] .copy-link').click();
  await until("the copy button to say it copied", async () =>
    (await a.page.locator('[data-screen="invite"] .copy-link').textContent()).includes("Copied"),
  );
  const clipboard = await a.page.evaluate(() => navigator.clipboard.readText());
  check(clipboard === roomUrl, `the clipboard holds the room link (${clipboard})`);
  await shot(a, `${tag}-1-invite`);

  // Over long-polling, A forces it with ?transport=polling while B's browser has
  // WebSocket blocked and opens the plain link: the client stays on long-polling.
  const blocked = mode === "polling";
  step(`B opens the link on a phone-sized screen${blocked ? " with WebSocket blocked" : ""}`);
  const b = await person(browser, "B", { phone: true, blockWebSocket: blocked });
  await b.page.goto(roomUrl);
  await waitState(b, "personinchat");
  check((await visibleText(b, "#login-title")) === "Chat with Alice", "B is invited to chat with Alice");
  check(
    (await b.page.locator("#login-avatar img").getAttribute("src")) === gravatar(alice.email),
    "B sees Alice's avatar",
  );
  await shot(b, `${tag}-2-person-in-chat`);
  await logIn(b, "ALICE", bob.email);
  check((await visibleText(b, "#login-error")).includes("already"), "B cannot take Alice's name");
  await logIn(b, bob.user, bob.email);

  step("both see that the chat started, each from their side");
  await waitState(a, "youstarted");
  await waitState(b, "theystarted");
  check((await visibleText(a, "#nomessages-title")).includes("Bob"), "A is told Bob joined");
  check((await visibleText(b, "#nomessages-title")).includes("Alice"), "B is told they chat with Alice");
  check(
    (await a.page.locator("#partner-avatar img").getAttribute("src")) === gravatar(bob.email),
    "A sees Bob's avatar in the header",
  );
  await shot(b, `${tag}-3-they-started`);

  step("A writes; B gets it with Alice's name and avatar; Enter sends");
  const bPolls = b.polls;
  await say(a, "Hello Bob!");
  const got = await waitMessage(b, "Hello Bob!");
  if (blocked) check(b.polls > bPolls, "B, with WebSocket blocked, got it over long-polling");
  check(got.user === "Alice" && !got.mine, `B shows Alice's message as hers: ${JSON.stringify(got)}`);
  check(got.img === gravatar(alice.email), `with Alice's avatar: ${got.img}`);
  check(got.when === "now", `sent "now": ${got.when}`);
  const mine = await waitMessage(a, "Hello Bob!");
  check(mine.mine && mine.user === "Alice", "A shows it as their own");
  await waitState(a, "chatting");
  await waitState(b, "chatting");

  step('B types: A sees "typing…"; Shift+Enter breaks the line');
  const box = b.page.locator("#composer-text");
  await box.click();
  await box.pressSequentially("Hi Alice");
  await until("A to see that Bob is typing", async () =>
    (await a.page.locator("#typing").textContent()).includes("Bob is typing"),
  );
  await box.press("Shift+Enter");
  await box.pressSequentially("how are you?");
  check((await box.inputValue()) === "Hi Alice\nhow are you?", "Shift+Enter put a line break in");
  await box.press("Enter");
  const twoLines = await waitMessage(a, "Hi Alice\nhow are you?");
  check(twoLines.user === "Bob" && twoLines.img === gravatar(bob.email), "A sees Bob's name and avatar");
  await until("the typing line to go away", async () =>
    (await a.page.locator("#typing").textContent()) === "",
  );

  step("a hostile message shows as text");
  await say(b, HOSTILE);
  await waitMessage(a, HOSTILE);
  check((await a.page.locator('#messages img[src="x"]').count()) === 0, "no <img> was injected");
  await sleep(300);

  step('"seen": B learns that A read the messages');
  await until("B's last message to be marked seen", async () => {
    const list = await messages(b);
    return list.at(-1)?.text === HOSTILE && list.at(-1).seen;
  });
  await say(a, "Nice to meet you!");
  await waitMessage(b, "Nice to meet you!");
  await shot(a, `${tag}-4-chatting`);
  await shot(b, `${tag}-4-chatting-phone`);
  const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth);
  check(overflow <= 360, `nothing sticks out of the 360-px screen (${overflow} px wide)`);

  step("C opens the link while A and B are in: too many people");
  const c = await person(browser, "C");
  await c.page.goto(roomUrl + query);
  await waitState(c, "toomany");
  check((await visibleText(c, '[data-screen="toomany"] h2')) === "Too many people", "C is told the room is full");
  await shot(c, `${tag}-5-too-many`);

  step("B closes the page: A sees that B left and the room is free");
  // As when a tab is closed: its unload handlers run (close() does not wait for them),
  // and the browser lives on, so what the page sent on its way out is delivered.
  await Promise.all([b.page.waitForEvent("close"), b.page.close({ runBeforeUnload: true })]);
  await waitState(a, "left");
  await b.context.close();
  check((await visibleText(a, "#banner-alone-text")).includes("Bob left"), "A is told Bob left");
  await shot(a, `${tag}-6-left`);
  step("C tries again now that the room is free: Alice is waiting");
  await c.page.locator("#toomany-retry").click();
  await waitState(c, "personinchat");

  step(`transport: ${mode}`);
  if (mode === "polling") {
    check(a.websockets.length === 0, `A opened no WebSocket with ?transport=polling: ${a.websockets}`);
    check(c.websockets.length === 0, "C opened no WebSocket either");
    check(a.polls > 0 && b.polls > 0, "A and B talked over long-polling");
  } else {
    check(a.websockets.some((u) => u.includes("/socket.io/")), "A upgraded to a WebSocket");
  }
  for (const who of [a, b, c]) clean(who);
  await a.context.close();
  await c.context.close();
}

/** Connection drops and comes back; reload; scrollback. */
async function keptConversation(browser) {
  const a = await person(browser, "A");
  const b = await person(browser, "B", { phone: true });
  // A's clock can be moved forward (it runs as usual until then).
  await a.context.clock.install();
  await a.page.goto(`${base}/create`);
  await a.page.waitForURL(/\/chat\/[A-Za-z0-9_-]{22,64}$/);
  const roomUrl = a.page.url();
  await waitState(a, "connected");
  await logIn(a, alice.user, alice.email);
  await waitState(a, "invite");
  await b.page.goto(roomUrl);
  await waitState(b, "personinchat");
  await logIn(b, bob.user, bob.email);
  await waitState(b, "theystarted");

  step(`B sends ${BULK_MESSAGES} messages, A answers a few`);
  for (let i = 1; i <= BULK_MESSAGES; i++) {
    await say(b, `message ${i}`);
    if (i % 20 === 0) await say(a, `got ${i}`);
    await sleep(BULK_SEND_PAUSE_MS);
  }
  await waitMessage(a, `message ${BULK_MESSAGES}`);
  await until("every message of A acked", async () => (await messages(a)).every((m) => !m.pending));
  const before = await messages(a);
  noDuplicates(before, a);
  check(before.length === BULK_MESSAGES + 3, `A has them all (${before.length})`);

  step('the connection drops: "reconnecting…"; it comes back and catches up');
  await a.context.setOffline(true);
  await a.page.locator("#banner-reconnecting").waitFor({ state: "visible" });
  await shot(a, "ws-7-reconnecting");
  await say(b, "while you were away 1");
  await say(b, "while you were away 2");
  await say(a, "sent while offline");
  await waitMessage(b, "while you were away 2");
  await a.context.setOffline(false);
  await a.page.locator("#banner-reconnecting").waitFor({ state: "hidden", timeout: 20_000 });
  await waitMessage(a, "while you were away 2", 20_000);
  await waitMessage(b, "sent while offline", 20_000);
  const after = await messages(a);
  noDuplicates(after, a);
  check(after.length === before.length + 3, `A caught up with no gap (${before.length} → ${after.length})`);
  check(after.every((m) => !m.pending), "A's offline message was sent on reconnection");

  step("A reloads mid-conversation: same seat, same name, the conversation is there");
  await a.page.reload();
  await waitState(a, "chatting");
  check((await visibleText(a, "#me-name")) === "Alice", "A is Alice again without logging in");
  const reloaded = await until("the latest page of messages", async () => {
    const list = await messages(a);
    return list.length >= 50 ? list : null;
  });
  noDuplicates(reloaded, a);
  check(reloaded.length === 50, `the latest 50 messages are shown (${reloaded.length})`);
  check(reloaded.at(-1).text === after.at(-1).text, "up to the newest one");
  check(
    reloaded.filter((m) => m.user === "Alice").every((m) => m.mine),
    "A's own messages are on A's side again",
  );
  await waitState(b, "chatting");
  await say(a, "I'm back");
  await waitMessage(b, "I'm back");
  await shot(a, "ws-8-reloaded");

  step("A scrolls to the top: the older messages load, the view stays put");
  const oldestShown = reloaded[0].seq;
  const anchor = a.page.locator(`#messages > li[data-seq="${oldestShown}"]`);
  await a.page.locator("#log").evaluate((log) => {
    log.scrollTop = 0;
  });
  const all = await until("the older messages", async () => {
    const list = await messages(a);
    return list.some((m) => m.text === "message 1") ? list : null;
  });
  noDuplicates(all, a);
  check(all.length === after.length + 1, `the whole conversation is there (${all.length})`);
  check(all[0].seq === 1 || all[0].text === "message 1", "from its very first message");
  await until("the beginning to be marked", async () =>
    (await a.page.locator("#log-top").textContent()).includes("beginning"),
  );
  const kept = await anchor.evaluate((li) => {
    const log = document.getElementById("log");
    const top = li.getBoundingClientRect().top - log.getBoundingClientRect().top;
    return { top, height: log.clientHeight, scrollTop: log.scrollTop };
  });
  check(kept.scrollTop > 0, `the view did not jump to the top (${JSON.stringify(kept)})`);
  check(kept.top > -200 && kept.top < kept.height, `the message read before is still in view (${JSON.stringify(kept)})`);
  await shot(a, "ws-9-scrollback");

  step("the same person in a second tab takes the seat over; the first tab can take it back");
  const second = await a.context.newPage();
  second.on("pageerror", (error) => a.errors.push(error.message));
  await second.goto(roomUrl);
  const a2 = { ...a, name: "A's second tab", page: second };
  await waitState(a2, "chatting");
  await waitState(a, "replaced");
  check((await visibleText(a2, "#me-name")) === "Alice", "the second tab is Alice without logging in");
  await a.page.locator("#replaced-back").click();
  await waitState(a, "chatting");
  await waitState(a2, "replaced");
  await second.close();
  await say(a, "still me");
  await waitMessage(b, "still me");

  step("a burst over the flood limit: refused sends say so and can be retried");
  await b.page.evaluate(() => {
    const box = document.getElementById("composer-text");
    const form = document.getElementById("composer");
    for (let i = 1; i <= 30; i++) {
      box.value = `burst ${i}`;
      form.requestSubmit();
    }
  });
  const refused = await until("some of the burst to be refused", async () => {
    const list = await messages(b);
    const burst = list.filter((m) => m.text.startsWith("burst "));
    return burst.length === 30 && burst.every((m) => m.seq !== null || m.failed) ? burst.filter((m) => m.failed) : null;
  });
  check(refused.length > 0, "the server refused part of a burst of 30");
  check(
    refused.every((m) => m.note.startsWith("Not sent") && m.note.includes("Retry")),
    `a refused message says why and offers a retry: ${JSON.stringify(refused[0])}`,
  );
  await sleep(1_500);
  const retry = b.page.locator("#messages .msg.failed .link-button");
  for (let clicks = 0; clicks < 30 && (await retry.count()) > 0; clicks++) {
    await retry.first().click();
    await sleep(150);
  }
  await until("every retried message to be sent", async () =>
    (await messages(b)).filter((m) => m.text.startsWith("burst ")).every((m) => m.seq !== null),
  );
  await waitMessage(a, "burst 30");
  const burstOnA = (await messages(a)).filter((m) => m.text.startsWith("burst "));
  check(burstOnA.length === 30, `A got the 30 messages once each (${burstOnA.length})`);
  noDuplicates(await messages(a), a);
  await shot(b, "ws-10-burst-phone");

  step('three minutes later A reads "3 min ago"; the connection, stale by then, comes back');
  check((await messages(a)).at(-1).when === "now", "the newest message was sent now");
  await a.page.clock.fastForward("03:00");
  await until('the times to say "3 min ago"', async () => (await messages(a)).at(-1).when === "3 min ago");
  await until("A to be connected again", async () =>
    (await a.page.locator("#chat").getAttribute("data-connection")) === "online" &&
    (await a.page.locator("#banner-reconnecting").isHidden()),
  20_000);
  await waitState(a, "chatting");
  await say(a, "three minutes later");
  await waitMessage(b, "three minutes later");

  for (const who of [a, b]) clean(who);
  await a.context.close();
  await b.context.close();
}

/** The client's pure helpers, here in Node. */
function clientHelpers() {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  check(relativeTime(now - 5_000, now) === "now", "5 s ago is now");
  check(relativeTime(now - 3 * 60_000, now) === "3 min ago", "3 min ago");
  check(relativeTime(now - 2 * 3_600_000, now) === "2 h ago", "2 h ago");
  check(relativeTime(now - 30 * 3_600_000, now) === "yesterday", "yesterday");
  check(nicknameProblem(" Ann ", null) === null, "a fine name");
  check(nicknameProblem("   ", null) !== null, "a blank name");
  check(nicknameProblem("x".repeat(33), null) !== null, "a long name");
  check(nicknameProblem("é".repeat(32), null) === null, "32 characters are fine");
  check(nicknameProblem("ann", "Ann") !== null, "a taken name, ignoring case");
  check(emailProblem("ann@example.com") === null && emailProblem("ann@") !== null, "e-mails");
  check(messageProblem("  ") !== null && messageProblem("hi") === null, "blank messages");
}

/** What every page still open showed when a step failed. */
async function failureScreenshots() {
  if (!shotsDir) return;
  for (const [index, who] of everybody.entries()) {
    if (who.page.isClosed()) continue;
    const file = path.join(shotsDir, `failure-${index}-${who.name}.png`);
    await who.page.screenshot({ path: file, timeout: 5_000 }).then(
      () => console.error(`screenshot of ${who.name} at the failure: ${file}`),
      () => {},
    );
  }
}

async function main() {
  if (shotsDir) {
    await mkdir(shotsDir, { recursive: true });
    for (const file of await readdir(shotsDir)) {
      if (file.startsWith("failure-")) await rm(path.join(shotsDir, file));
    }
  }
  console.log("client helpers");
  clientHelpers();
  // launch() gives every run a fresh temporary user-data directory of its own.
  const browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    timeout: 30_000,
  });
  try {
    console.log("two people chat (WebSocket)");
    await twoPeopleChat(browser, "default");
    console.log("two people chat (long-polling only)");
    await twoPeopleChat(browser, "polling");
    console.log("a kept conversation: reconnection, reload, scrollback");
    await keptConversation(browser);
  } catch (error) {
    await failureScreenshots();
    throw error;
  } finally {
    await browser.close().catch(() => {});
  }
  console.log("browser test: all passed");
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`browser test FAILED: ${error.stack || error}`);
    process.exit(1);
  },
);
