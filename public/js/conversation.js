// The conversation on screen: messages in `seq` order, each shown once (deduplicated by
// seq), own messages pending until the server acks them, older pages prepended without
// moving what the reader is looking at, the newest message kept in view.
//
// Every piece of user data goes into the DOM as text (textContent, attributes), never
// as HTML.

import { fullTime, relativeTime } from "./time.js";

/** How close to the bottom (px) still counts as "reading the newest messages". */
const STICK_TO_BOTTOM_PX = 80;

/** An avatar: the picture, or the first letter of the name when it cannot load. */
export function setAvatar(holder, url, name) {
  const img = holder.querySelector("img");
  holder.dataset.initial = [...(name || "?").trim()][0]?.toUpperCase() || "?";
  if (img.getAttribute("src") !== url) {
    holder.classList.remove("broken");
    img.onerror = () => holder.classList.add("broken");
    img.src = url;
  }
  img.alt = name ? `${name}` : "";
}

function avatarElement(url, name) {
  const holder = document.createElement("span");
  holder.className = "avatar";
  const img = document.createElement("img");
  img.referrerPolicy = "no-referrer";
  img.loading = "lazy";
  holder.append(img);
  setAvatar(holder, url, name);
  return holder;
}

export class Conversation {
  /**
   * @param {HTMLElement} scroller the element that scrolls (the log)
   * @param {HTMLOListElement} list the list of messages inside it
   * @param {HTMLElement} top the line above the first message ("beginning", "loading…")
   */
  constructor(scroller, list, top) {
    this.scroller = scroller;
    this.list = list;
    this.top = top;
    /** @type {Map<number, HTMLLIElement>} confirmed messages by seq */
    this.bySeq = new Map();
    /** @type {Map<string, {li: HTMLLIElement, text: string}>} own unacked messages by cid */
    this.pending = new Map();
    this.me = null;
    this.partnerReadSeq = 0;
    // When the box changes size (a banner shows, the phone keyboard opens), a reader
    // who was at the newest message stays there.
    this.pinned = true;
    scroller.addEventListener("scroll", () => {
      this.pinned = this.isNearBottom();
    });
    new ResizeObserver(() => {
      if (this.pinned) this.scrollToBottom();
    }).observe(scroller);
  }

  /** Who "me" is: decides which messages go on the right. */
  setMe(user) {
    this.me = user;
  }

  get size() {
    return this.bySeq.size + this.pending.size;
  }

  get oldestSeq() {
    let oldest = Infinity;
    for (const seq of this.bySeq.keys()) oldest = Math.min(oldest, seq);
    return oldest === Infinity ? null : oldest;
  }

  get newestSeq() {
    let newest = 0;
    for (const seq of this.bySeq.keys()) newest = Math.max(newest, seq);
    return newest || null;
  }

  /** The newest seq of a message from somebody else (what "read" acknowledges). */
  get newestPartnerSeq() {
    let newest = 0;
    for (const [seq, li] of this.bySeq) {
      if (!li.classList.contains("mine")) newest = Math.max(newest, seq);
    }
    return newest || null;
  }

  isNearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < STICK_TO_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.pinned = true;
  }

  /** Forgets every message (a new seat in a room, or the room erased). */
  clear() {
    this.bySeq.clear();
    this.pending.clear();
    this.list.replaceChildren();
    this.partnerReadSeq = 0;
  }

  /**
   * Adds confirmed messages `{id, seq, msg, user, img, ts}` wherever they belong, skipping
   * the ones already shown. Keeps the newest in view if the reader was there (or `stick`).
   * Returns how many were new.
   */
  addMessages(messages, { stick = false } = {}) {
    const follow = stick || this.isNearBottom();
    const added = this.#insertNew(messages);
    if (added) this.#refreshSeen();
    if (follow) this.scrollToBottom();
    return added;
  }

  /** Inserts the messages not shown yet, each at its place by seq; how many were new. */
  #insertNew(messages) {
    let added = 0;
    for (const m of messages) {
      if (this.bySeq.has(m.seq)) continue;
      const li = this.#messageElement(m.msg, m.user, m.img, m.ts);
      this.#confirmElement(li, m);
      this.#insertInOrder(li, m.seq);
      added += 1;
    }
    return added;
  }

  /**
   * Prepends an older page, keeping the messages the reader sees where they are.
   */
  prependOlder(messages) {
    const s = this.scroller;
    const fromBottom = s.scrollHeight - s.scrollTop;
    const added = this.#insertNew(messages);
    s.scrollTop = s.scrollHeight - fromBottom;
    if (added) this.#refreshSeen();
    return added;
  }

  /** Shows one of my messages at once, as pending. */
  addPending(cid, text, img) {
    const li = this.#messageElement(text, this.me, img, Date.now());
    li.classList.add("pending");
    li.dataset.cid = cid;
    this.#setNote(li, "Sending…");
    this.list.append(li);
    this.pending.set(cid, { li, text });
    this.scrollToBottom();
  }

  /** The server stored it: `{id, seq, ts}`. */
  confirm(cid, ack) {
    const entry = this.pending.get(cid);
    if (!entry) return;
    this.pending.delete(cid);
    const { li } = entry;
    if (this.bySeq.has(ack.seq)) {
      // It came back already (catch-up after a reconnection): keep the one shown.
      li.remove();
      return;
    }
    const follow = this.isNearBottom();
    li.classList.remove("pending", "failed");
    this.#setNote(li, "");
    this.#confirmElement(li, ack);
    li.querySelector("time").dataset.ts = String(ack.ts);
    this.#insertInOrder(li, ack.seq);
    this.#refreshSeen();
    this.refreshTimes();
    if (follow) this.scrollToBottom();
  }

  /** The server refused it (or it could not be sent): say why, offer a retry. */
  fail(cid, reason, onRetry) {
    const entry = this.pending.get(cid);
    if (!entry) return;
    const { li } = entry;
    li.classList.add("failed");
    li.classList.remove("pending");
    const note = this.#setNote(li, `Not sent: ${reason} `);
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link-button";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => {
      li.classList.remove("failed");
      li.classList.add("pending");
      this.#setNote(li, "Sending…");
      onRetry(cid);
    });
    note.append(retry);
  }

  /** Marks a failed message as waiting again (an automatic retry). */
  markSending(cid) {
    const entry = this.pending.get(cid);
    if (!entry) return;
    entry.li.classList.remove("failed");
    entry.li.classList.add("pending");
    this.#setNote(entry.li, "Sending…");
  }

  /** Own messages waiting to be (re)sent, oldest first: `[cid, text]`. Refused ones wait
   * for the user's "Retry". */
  unacked() {
    return [...this.pending]
      .filter(([, { li }]) => !li.classList.contains("failed"))
      .map(([cid, { text }]) => [cid, text]);
  }

  /** The partner has seen everything up to `seq`. */
  setPartnerRead(seq) {
    if (seq > this.partnerReadSeq) {
      this.partnerReadSeq = seq;
      this.#refreshSeen();
    }
  }

  /** "now", "3 min ago"… recomputed for every message. */
  refreshTimes(now = Date.now()) {
    for (const time of this.list.querySelectorAll("time[data-ts]")) {
      time.textContent = relativeTime(Number(time.dataset.ts), now);
    }
  }

  #messageElement(text, user, img, ts) {
    const li = document.createElement("li");
    li.className = `msg ${user === this.me ? "mine" : "theirs"}`;
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const head = document.createElement("div");
    head.className = "msg-head";
    const name = document.createElement("b");
    name.className = "msg-user";
    name.textContent = user;
    const time = document.createElement("time");
    time.dataset.ts = String(ts);
    time.dateTime = new Date(ts).toISOString();
    time.title = fullTime(ts);
    time.textContent = relativeTime(ts);
    head.append(name, " ", time);
    const body = document.createElement("p");
    body.className = "msg-text";
    body.textContent = text;
    const note = document.createElement("span");
    note.className = "msg-note";
    bubble.append(head, body, note);
    li.append(avatarElement(img, user), bubble);
    return li;
  }

  #confirmElement(li, m) {
    li.dataset.seq = String(m.seq);
    li.dataset.id = String(m.id);
    this.bySeq.set(m.seq, li);
  }

  #setNote(li, text) {
    const note = li.querySelector(".msg-note");
    note.textContent = text;
    return note;
  }

  /** Confirmed messages sit in seq order; pending ones stay after all of them. */
  #insertInOrder(li, seq) {
    let before = null;
    for (let el = this.list.lastElementChild; el; el = el.previousElementSibling) {
      if (el === li) continue;
      const elSeq = el.dataset.seq ? Number(el.dataset.seq) : Infinity;
      if (elSeq < seq) break;
      before = el;
    }
    this.list.insertBefore(li, before);
  }

  /** "Seen" under my newest message the partner has read. */
  #refreshSeen() {
    for (const old of this.list.querySelectorAll(".msg.seen")) old.classList.remove("seen");
    let best = null;
    for (const [seq, li] of this.bySeq) {
      if (li.classList.contains("mine") && seq <= this.partnerReadSeq) {
        if (!best || seq > Number(best.dataset.seq)) best = li;
      }
    }
    if (best) best.classList.add("seen");
  }
}
