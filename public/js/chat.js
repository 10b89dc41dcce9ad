// The chat page: one Socket.IO connection to the `/socket` namespace, the seed's flow
// (load → peopleinchat → login → startChat → msg/receive → leave) and tete's additions
// (tokens, history, catch-up after a reconnection, typing, read receipts).
// Wire contract: DESIGN.md. `?transport=polling` (or `websocket`) on the page URL forces
// that one transport; otherwise Socket.IO starts on long-polling and upgrades.

import { io } from "/public/vendor/socket.io.esm.min.js";
import { emailProblem, messageProblem, nicknameProblem } from "./checks.js";
import { Conversation, setAvatar } from "./conversation.js";
import * as identity from "./identity.js";

/** How long an ack may take before the request counts as unanswered. */
const ACK_TIMEOUT_MS = 10_000;
/** "typing" stops after this much quiet in the text box. */
const TYPING_IDLE_MS = 2_500;
/** The partner's "typing…" goes away if no news comes for this long. */
const PARTNER_TYPING_MAX_MS = 8_000;
/** Older messages come in pages of this size when scrolling up. */
const HISTORY_PAGE = 50;
/** Catch-up after a reconnection pages on with this size (the server's maximum). */
const CATCH_UP_PAGE = 200;
/** Bound on catch-up pages, so a misbehaving server cannot keep the client looping. */
const CATCH_UP_MAX_PAGES = 500;
/** Scrolled this close to the top: fetch the page before. */
const LOAD_OLDER_WITHIN_PX = 120;
/** "now", "3 min ago" are recomputed this often. */
const TIME_REFRESH_MS = 30_000;
/** A server error banner goes away by itself after this long. */
const ERROR_BANNER_MS = 8_000;

const $ = (id) => document.getElementById(id);
const root = $("chat");
const room = root.dataset.room || decodeURIComponent(location.pathname.split("/").pop());
const roomLink = `${location.origin}/chat/${room}`;
const baseTitle = document.title;

const log = $("log");
const conversation = new Conversation(log, $("messages"), $("log-top"));
const form = $("login-form");
const nameInput = $("login-name");
const emailInput = $("login-email");
const composer = $("composer");
const textarea = $("composer-text");

const state = {
  /** connecting | login | seated | toomany | erased | replaced */
  phase: "connecting",
  everConnected: false,
  /** Who was in the room when we arrived: `{user, avatar}` from peopleinchat. */
  occupant: null,
  /** Me once seated: `{user, img, email}`. */
  me: null,
  /** The person seated with me, and who was first. */
  partner: null,
  startedByMe: false,
  /** The partner who left (the room is free again). */
  leftPartner: null,
  /** Holding a seat on this connection right now. */
  seated: false,
  /** Take the seat back by ourselves after a reconnection. */
  wantSeat: false,
  loggingIn: false,
  awaitingLoad: false,
  /** A startChat that came before our login ack. */
  pendingStart: null,
  hasOlder: false,
  loadingOlder: false,
  olderFailed: false,
  lastReadSent: 0,
  partnerTyping: false,
  unread: 0,
};

const options = { path: "/socket.io/" };
const forced = new URLSearchParams(location.search).get("transport");
if (forced === "polling" || forced === "websocket") options.transports = [forced];
const socket = io("/socket", options);

// ---- connection ------------------------------------------------------------------

socket.on("connect", () => {
  state.everConnected = true;
  $("banner-reconnecting").hidden = true;
  state.awaitingLoad = true;
  socket.emit("load", room);
  render();
});

socket.on("disconnect", (reason) => {
  state.seated = false;
  state.loggingIn = false;
  state.awaitingLoad = false;
  setPartnerTyping(false);
  typingSent = false;
  if (reason === "io server disconnect") {
    // The server closed this socket on purpose; come back, as after any other drop.
    setTimeout(() => socket.connect(), 1_000);
  }
  $("banner-reconnecting").hidden = false;
  render();
});

socket.on("connect_error", () => {
  $("banner-reconnecting").hidden = false;
});

// A page that goes away says goodbye at once, so that the partner sees "left" without
// waiting for the heartbeat to time out. Over long-polling an ordinary request may be
// cancelled with the page, so the Engine.IO close packet ("1") goes as a beacon.
addEventListener("pagehide", () => {
  const engine = socket.io.engine;
  if (engine && engine.transport && engine.transport.name === "polling" && engine.id) {
    const url = `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(engine.id)}`;
    if (navigator.sendBeacon(url, "1")) return;
  }
  socket.disconnect();
});
// Back from the back/forward cache: connect again.
addEventListener("pageshow", (event) => {
  if (event.persisted && !socket.connected) socket.connect();
});

socket.on("peopleinchat", (data) => {
  if (!state.awaitingLoad) return;
  state.awaitingLoad = false;
  state.occupant =
    data && data.number === 1 ? { user: String(data.user), avatar: String(data.avatar) } : null;
  afterLoad(false);
});

socket.on("tooMany", () => {
  if (state.awaitingLoad) {
    state.awaitingLoad = false;
    state.occupant = null;
    afterLoad(true);
    return;
  }
  if (state.loggingIn || state.seated) return; // the login ack says what happened
  enter("toomany");
});

/** The room answered `load`: take our seat back, or ask who we are. */
function afterLoad(full) {
  if (state.phase === "replaced" || state.phase === "erased") return render();
  const seat =
    state.wantSeat && state.me
      ? { user: state.me.user, email: state.me.email }
      : identity.token() && identity.seatIn(room);
  if (seat) {
    // Even when the room looks full: one of the two may be our own stale connection,
    // and the token takes that seat over.
    login(seat.user, seat.email, { auto: true });
    return;
  }
  if (full) return enter("toomany");
  if (state.phase !== "seated") {
    prefillLogin();
    enter("login");
  }
}

// ---- login -----------------------------------------------------------------------

function login(user, email, { auto = false } = {}) {
  state.loggingIn = true;
  const payload = { user, avatar: email, id: room };
  const token = identity.token();
  if (token) payload.token = token;
  const after = state.me && state.me.user === user ? conversation.newestSeq : null;
  if (after) payload.after = after;
  setLoginBusy(true);
  socket.timeout(ACK_TIMEOUT_MS).emit("login", payload, (err, ack) => {
    state.loggingIn = false;
    setLoginBusy(false);
    if (err) {
      if (!socket.connected) return; // the reconnection logs in again
      return loginRefused({ message: "The server did not answer. Please try again." }, user, email);
    }
    if (!ack || ack.ok !== true) return loginRefused(ack || {}, user, email, auto);
    seated(ack, email, Boolean(after));
  });
}

function loginRefused(ack, user, email, auto = false) {
  state.wantSeat = false;
  if (ack.code === "room_full") return enter("toomany");
  if (auto) identity.forgetSeat(room);
  nameInput.value = user;
  emailInput.value = email;
  showLoginError(ack.message || "The server did not let you in. Please try again.");
  enter("login");
}

async function seated(ack, email, catchingUp) {
  identity.setToken(ack.token);
  identity.rememberSeat(room, ack.user, email);
  const sameMe = state.me && state.me.user === ack.user;
  state.me = { user: ack.user, img: ack.img, email };
  state.seated = true;
  state.wantSeat = true;
  state.phase = "seated";
  if (state.partner) state.leftPartner = state.partner;
  state.partner = null;
  showLoginError(null);
  conversation.setMe(ack.user);
  if (!sameMe) {
    conversation.clear();
    state.hasOlder = false;
  }
  if (state.pendingStart) {
    applyStart(state.pendingStart);
    state.pendingStart = null;
  }
  render();

  // Unacked sends first: once acked, the catch-up below does not show them twice.
  await resendUnacked();
  const messages = Array.isArray(ack.messages) ? ack.messages : [];
  if (catchingUp) {
    conversation.addMessages(messages);
    if (ack.more) await catchUp();
  } else {
    conversation.addMessages(messages, { stick: true });
    state.hasOlder = Boolean(ack.more);
  }
  render();
  maybeSendRead();
  fillScreenWithOlder();
}

/** After a reconnection with more than one page missed: page on until up to date. */
async function catchUp() {
  for (let page = 0; page < CATCH_UP_MAX_PAGES && state.seated; page++) {
    let ack;
    try {
      ack = await socket
        .timeout(ACK_TIMEOUT_MS)
        .emitWithAck("history", { after: conversation.newestSeq, limit: CATCH_UP_PAGE });
    } catch {
      return;
    }
    if (!ack || !Array.isArray(ack.messages)) return;
    conversation.addMessages(ack.messages);
    if (!ack.more || ack.messages.length === 0) return;
  }
}

function prefillLogin() {
  if (nameInput.value || emailInput.value) return;
  const last = identity.lastIdentity();
  if (last) {
    nameInput.value = last.user;
    emailInput.value = last.email;
  }
}

function setLoginBusy(busy) {
  $("login-submit").disabled = busy;
  $("login-submit").textContent = busy ? "Entering…" : "Enter the chat";
}

function showLoginError(message) {
  const el = $("login-error");
  el.textContent = message || "";
  el.hidden = !message;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.loggingIn) return;
  const user = nameInput.value.trim();
  const email = emailInput.value.trim();
  const nameProblem = nicknameProblem(user, state.occupant?.user);
  const problem = nameProblem || emailProblem(email);
  if (problem) {
    showLoginError(problem);
    (nameProblem ? nameInput : emailInput).focus();
    return;
  }
  if (!socket.connected) {
    showLoginError("Not connected to the server yet. Please wait a moment.");
    return;
  }
  showLoginError(null);
  login(user, email);
});

// ---- the room ----------------------------------------------------------------------

socket.on("img", (url) => {
  if (state.me && typeof url === "string") {
    state.me.img = url;
    render();
  }
});

socket.on("startChat", (data) => {
  if (!data || data.id !== room) return;
  if (!state.seated) {
    state.pendingStart = data;
    return;
  }
  applyStart(data);
  render();
  maybeSendRead();
});

function applyStart(data) {
  const users = Array.isArray(data.users) ? data.users : [];
  const avatars = Array.isArray(data.avatars) ? data.avatars : [];
  const index = users.findIndex((u) => u !== state.me.user);
  if (index < 0) return;
  state.partner = { user: String(users[index]), avatar: String(avatars[index] ?? "") };
  state.startedByMe = users[0] === state.me.user;
  state.leftPartner = null;
  // A partner who (re)joins learns from scratch how far we have read.
  state.lastReadSent = 0;
}

socket.on("leave", (data) => {
  if (!data || data.room !== room) return;
  if (state.me && data.user === state.me.user) return; // our own older connection
  state.leftPartner = { user: String(data.user), avatar: String(data.avatar ?? "") };
  state.partner = null;
  setPartnerTyping(false);
  render();
});

socket.on("receive", (message) => {
  if (!state.seated || !message || typeof message.seq !== "number") return;
  const added = conversation.addMessages([message]);
  setPartnerTyping(false);
  if (added && document.visibilityState !== "visible") {
    state.unread += added;
    document.title = `(${state.unread}) ${baseTitle}`;
  }
  render();
  maybeSendRead();
});

socket.on("typing", (data) => {
  if (!data || (state.me && data.user === state.me.user)) return;
  setPartnerTyping(Boolean(data.typing));
});

socket.on("read", (data) => {
  if (!data || (state.me && data.user === state.me.user)) return;
  if (typeof data.seq === "number") conversation.setPartnerRead(data.seq);
});

socket.on("erased", (data) => {
  if (data && data.room !== room) return;
  identity.forgetSeat(room);
  state.seated = false;
  state.wantSeat = false;
  state.partner = null;
  state.leftPartner = null;
  conversation.clear();
  enter("erased");
});

socket.on("replaced", (data) => {
  if (data && data.room !== room) return;
  state.seated = false;
  state.wantSeat = false;
  state.partner = null;
  setPartnerTyping(false);
  enter("replaced");
});

socket.on("error", (data) => {
  showError(data && data.message ? String(data.message) : "Something went wrong.");
});

$("replaced-back").addEventListener("click", () => {
  if (state.me && socket.connected) login(state.me.user, state.me.email);
});

$("toomany-retry").addEventListener("click", () => {
  if (!socket.connected) return;
  state.awaitingLoad = true;
  socket.emit("load", room);
});

let partnerTypingTimer = null;
function setPartnerTyping(on) {
  clearTimeout(partnerTypingTimer);
  state.partnerTyping = on && Boolean(state.partner);
  if (state.partnerTyping) {
    partnerTypingTimer = setTimeout(() => setPartnerTyping(false), PARTNER_TYPING_MAX_MS);
  }
  renderTyping();
}

// ---- sending -----------------------------------------------------------------------

/** Send attempts per client message id: only the newest attempt's answer counts. */
const attempts = new Map();

function newCid() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function send(text) {
  const cid = newCid();
  conversation.addPending(cid, text, state.me.img);
  render();
  transmit(cid, text);
}

/** Sends (or sends again, with the same cid) and settles when answered. */
function transmit(cid, text) {
  if (!socket.connected || !state.seated) return Promise.resolve(); // re-sent on re-login
  const attempt = (attempts.get(cid) || 0) + 1;
  attempts.set(cid, attempt);
  conversation.markSending(cid);
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit("msg", { msg: text, cid }, (err, ack) => {
      resolve();
      if (attempts.get(cid) !== attempt) return;
      if (err) {
        // Dropped connection: the re-login sends it again. Live one: let the user retry.
        if (socket.connected && state.seated) {
          conversation.fail(cid, "the server did not answer.", () => transmit(cid, text));
        }
        return;
      }
      if (ack && ack.ok === true) {
        attempts.delete(cid);
        conversation.confirm(cid, ack);
        render();
      } else {
        const reason = ack && ack.message ? String(ack.message) : "refused by the server.";
        conversation.fail(cid, reason, () => transmit(cid, text));
      }
    });
  });
}

function resendUnacked() {
  return Promise.all(conversation.unacked().map(([cid, text]) => transmit(cid, text)));
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!state.seated && !state.wantSeat) return;
  const text = textarea.value.trim();
  const problem = messageProblem(text);
  if (problem) {
    if (text) showError(problem);
    return;
  }
  send(text);
  textarea.value = "";
  autosize();
  stopTyping();
  textarea.focus();
});

textarea.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

let typingSent = false;
let typingTimer = null;
textarea.addEventListener("input", () => {
  autosize();
  if (!state.seated) return;
  clearTimeout(typingTimer);
  if (textarea.value.trim() === "") return stopTyping();
  if (!typingSent) {
    socket.emit("typing", { typing: true });
    typingSent = true;
  }
  typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
});
textarea.addEventListener("blur", () => stopTyping());

function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent && socket.connected && state.seated) socket.emit("typing", { typing: false });
  typingSent = false;
}

function autosize() {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
}

// ---- reading -----------------------------------------------------------------------

/** Tells the partner how far we have read, when the newest of their messages is shown. */
function maybeSendRead() {
  if (!state.seated || document.visibilityState !== "visible") return;
  if (currentScreen() !== "log" || !conversation.isNearBottom()) return;
  const seq = conversation.newestPartnerSeq;
  if (seq && seq > state.lastReadSent) {
    state.lastReadSent = seq;
    socket.emit("read", { seq });
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    state.unread = 0;
    document.title = baseTitle;
    maybeSendRead();
  }
});

log.addEventListener("scroll", () => {
  if (log.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
  maybeSendRead();
});

function loadOlder() {
  if (!state.hasOlder || state.loadingOlder || !state.seated || !socket.connected) return;
  const before = conversation.oldestSeq;
  if (before === null) return;
  state.loadingOlder = true;
  state.olderFailed = false;
  renderLogTop();
  socket.timeout(ACK_TIMEOUT_MS).emit("history", { before, limit: HISTORY_PAGE }, (err, ack) => {
    state.loadingOlder = false;
    if (err || !ack || !Array.isArray(ack.messages)) {
      state.olderFailed = true;
      renderLogTop();
      return;
    }
    conversation.prependOlder(ack.messages);
    state.hasOlder = Boolean(ack.more);
    renderLogTop();
    requestAnimationFrame(fillScreenWithOlder);
  });
}

/** Older pages while the log does not reach the top of its box (nothing to scroll). */
function fillScreenWithOlder() {
  if (currentScreen() === "log" && log.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
}

// ---- rendering ---------------------------------------------------------------------

/** [the seed's state, the screen that shows it] */
function currentView() {
  switch (state.phase) {
    case "connecting":
      return ["connecting", "connecting"];
    case "login":
      return [state.occupant ? "personinchat" : "connected", "login"];
    case "seated": {
      const hasMessages = conversation.size > 0;
      if (state.partner) {
        if (hasMessages) return ["chatting", "log"];
        return [state.startedByMe ? "youstarted" : "theystarted", "nomessages"];
      }
      if (state.leftPartner) return ["left", hasMessages ? "log" : "left"];
      return ["invite", hasMessages ? "log" : "invite"];
    }
    default:
      return [state.phase, state.phase];
  }
}

function currentScreen() {
  return currentView()[1];
}

function enter(phase) {
  state.phase = phase;
  render();
}

function render() {
  const [name, screen] = currentView();
  root.dataset.state = name;
  root.dataset.connection = socket.connected ? "online" : "offline";
  const logWasHidden = log.hidden;
  for (const el of root.querySelectorAll("[data-screen]")) {
    el.hidden = el.dataset.screen !== screen;
  }
  // A hidden box cannot scroll: the newest message comes into view once it shows.
  if (screen === "log" && logWasHidden) conversation.scrollToBottom();
  renderHead(name);
  renderCards(name);
  renderTyping();
  renderLogTop();

  const alone = screen === "log" && !state.partner;
  $("banner-alone").hidden = !alone;
  if (alone) {
    $("banner-alone-text").textContent = state.leftPartner
      ? `${state.leftPartner.user} left this chat. The room is free again: invite somebody.`
      : "Nobody else is here right now. Invite somebody:";
  }

  const canWrite = state.phase === "seated" && (Boolean(state.partner) || conversation.size > 0);
  composer.hidden = !canWrite;
}

function renderHead(name) {
  const avatar = $("partner-avatar");
  let who = "Private room";
  let status = "";
  let person = null;
  if (name === "connecting") status = socket.connected ? "Connected" : "Connecting…";
  else if (name === "connected") status = "Nobody is here yet";
  else if (name === "personinchat") {
    person = state.occupant;
    status = "is waiting for you";
  } else if (state.partner) {
    person = state.partner;
    status = "in the chat";
  } else if (state.leftPartner && state.phase === "seated") {
    person = { user: state.leftPartner.user, avatar: state.leftPartner.avatar };
    status = "left the chat";
  } else if (name === "invite") status = "Waiting for somebody to join";
  else if (name === "toomany") status = "This room is full";
  if (person) {
    who = person.user;
    setAvatar(avatar, person.avatar, person.user);
  }
  avatar.hidden = !person;
  $("partner-name").textContent = who;
  $("partner-status").textContent = status;

  const me = $("me");
  me.hidden = !(state.me && state.phase === "seated");
  if (state.me) {
    $("me-name").textContent = state.me.user;
    setAvatar($("me-avatar"), state.me.img, state.me.user);
  }
}

function renderCards(name) {
  for (const input of root.querySelectorAll(".room-link")) input.value = roomLink;
  if (name === "connected" || name === "personinchat") {
    const occupant = state.occupant;
    $("login-avatar").hidden = !occupant;
    if (occupant) setAvatar($("login-avatar"), occupant.avatar, occupant.user);
    $("login-title").textContent = occupant ? `Chat with ${occupant.user}` : "Who are you?";
    $("login-lead").textContent = occupant
      ? `${occupant.user} is in this room. Tell us who you are to join them.`
      : "You are the first one here. Tell us who you are, then invite somebody.";
  }
  if ((name === "youstarted" || name === "theystarted") && state.partner) {
    const p = state.partner;
    setAvatar($("nomessages-avatar"), p.avatar, p.user);
    $("nomessages-title").textContent =
      name === "youstarted" ? `${p.user} joined your room` : `You are chatting with ${p.user}`;
    $("nomessages-lead").textContent =
      name === "youstarted"
        ? "Nobody has written yet. Say hello from the box below!"
        : `${p.user} opened this room. Send them a message from the box below!`;
  }
  if (name === "left" && state.leftPartner) {
    setAvatar($("left-avatar"), state.leftPartner.avatar, state.leftPartner.user);
    $("left-title").textContent = `${state.leftPartner.user} has left this chat.`;
  }
}

function renderTyping() {
  const line = $("typing");
  line.textContent =
    state.partnerTyping && state.partner ? `${state.partner.user} is typing…` : "";
}

function renderLogTop() {
  const top = $("log-top");
  if (conversation.size === 0) top.textContent = "";
  else if (state.loadingOlder) top.textContent = "Loading earlier messages…";
  else if (state.olderFailed) top.textContent = "Could not load earlier messages. Scroll up to try again.";
  else if (state.hasOlder) top.textContent = "Scroll up for earlier messages";
  else top.textContent = "This is the beginning of the conversation.";
}

// ---- copying the room link ---------------------------------------------------------

for (const button of root.querySelectorAll(".copy-link")) {
  button.addEventListener("click", async () => {
    const input = button.parentElement.querySelector(".room-link");
    const label = button.textContent;
    let copied = false;
    try {
      await navigator.clipboard.writeText(roomLink);
      copied = true;
    } catch {
      input.select();
      copied = document.execCommand("copy");
    }
    button.textContent = copied ? "Copied!" : "Select and copy";
    input.select();
    setTimeout(() => {
      button.textContent = label;
    }, 2_000);
  });
}

for (const input of root.querySelectorAll(".room-link")) {
  input.addEventListener("focus", () => input.select());
}

// ---- errors ------------------------------------------------------------------------

let errorTimer = null;
function showError(message) {
  $("banner-error-text").textContent = message;
  $("banner-error").hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => {
    $("banner-error").hidden = true;
  }, ERROR_BANNER_MS);
}
$("banner-error-close").addEventListener("click", () => {
  $("banner-error").hidden = true;
});

setInterval(() => conversation.refreshTimes(), TIME_REFRESH_MS);
render();
