/* explorer.js — the tranche explorer (served by tranched at GET /).
 *
 * One WebSocket to GET /ws carries JSON-RPC calls and the ledger.subscribe
 * feed.  Views by location.hash: #/ (head, checkpoint, assets, journal),
 * #/asset/ID (terms, holders, cap table), #/entry/SEQ (the tx, and
 * "verify in your browser").  Server text is only ever put in the page as
 * text (never as HTML).  Verification trusts nothing the server says: it
 * recomputes txid, the entry hash and the Merkle root with WebCrypto
 * SHA-256 and checks Ed25519 signatures against the verifier key the user
 * gives (PROTOCOL.md §3, RFC 9162 §2.1.3.2, C2SP signed-note).
 */
"use strict";

const PAGE = 20;
const HOLDERS_MAX = 2000;
const enc = new TextEncoder();

// ---------------------------------------------------------------- DOM

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") Object.assign(e.style, v); // CSSOM: allowed by the page's CSP, unlike a style attribute
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

const short = (hex) => (hex && hex.length > 16 ? hex.slice(0, 8) + "…" + hex.slice(-6) : hex || "");
const when = (ms) => new Date(ms).toISOString().replace("T", " ").replace(".000Z", "Z");
const num = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));
const link = (href, text) => el("a", { href }, text);
const row = (...cells) => el("tr", null, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", null, c))));
const numCell = (n) => el("td", { class: "num" }, num(n));

/* Name–value rows, no header. */
const kv = (rows) => el("table", { class: "kv" }, el("tbody", null, rows));

function table(heads, rows) {
  return el("table", null, el("thead", null, el("tr", null, heads.map((h) => el("th", null, h)))), el("tbody", null, rows));
}

// ---------------------------------------------------------------- JSON-RPC over WebSocket

class Rpc {
  constructor() {
    this.next = 1;
    this.pending = new Map();
    this.listeners = new Map();
    this.ready = this.open();
  }
  open() {
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(scheme + "//" + location.host + "/ws");
      ws.onopen = () => { this.ws = ws; resolve(); };
      ws.onerror = () => reject(new Error("WebSocket to /ws failed"));
      ws.onclose = () => {
        setLive(false, "disconnected");
        for (const p of this.pending.values()) p.reject(new Error("connection closed"));
        this.pending.clear();
      };
      ws.onmessage = (ev) => this.receive(JSON.parse(ev.data));
    });
  }
  receive(msg) {
    if (msg.id !== undefined && this.pending.has(msg.id)) {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { rpc: msg.error }));
      else p.resolve(msg.result);
    } else if (msg.method) {
      for (const fn of this.listeners.get(msg.method) || []) fn(msg.params);
    }
  }
  async call(method, params) {
    await this.ready;
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", method, params: params || {}, id }));
    });
  }
  on(method, fn) {
    if (!this.listeners.has(method)) this.listeners.set(method, []);
    this.listeners.get(method).push(fn);
  }
}

const rpc = new Rpc();

// ---------------------------------------------------------------- the live journal

const live = { head: null, sub: null, entries: [], listeners: new Set() };

function setLive(on, text) {
  const p = document.getElementById("live");
  if (!p) return;
  p.className = "pill " + (on ? "on" : "off");
  p.textContent = text;
}

async function startLive() {
  rpc.on("ledger.entry", (p) => {
    if (p.subscription !== live.sub) return;
    live.head = p.entry.seq;
    for (const fn of live.listeners) fn(p.entry);
  });
  rpc.on("ledger.subscription_end", async (p) => {
    if (p.subscription !== live.sub) return;
    const r = await rpc.call("ledger.subscribe", { from: p.next }); // resume: nothing missed
    live.sub = r.subscription;
  });
  const r = await rpc.call("ledger.subscribe", {});
  live.sub = r.subscription;
  setLive(true, "live");
}

// ---------------------------------------------------------------- views

const view = () => document.getElementById("view");

function errorBox(e) {
  return el("section", { class: "wide" }, el("h2", null, "Error"), el("p", { class: "bad" }, e.message || String(e)));
}

function entryRow(e) {
  let tx = {};
  try { tx = typeof e.tx === "string" ? JSON.parse(e.tx) : {}; } catch (_) { /* shown raw on its page */ }
  const type = e.type || tx.type || "";
  const signer = e.signer || tx.signer || "";
  return row(link("#/entry/" + e.seq, String(e.seq)), when(e.time), type, el("span", { class: "mono" }, short(signer)),
             el("span", { class: "mono" }, short(e.txid)));
}

async function journalSection(size) {
  const sec = el("section", { class: "wide", id: "journal" }, el("h2", null, "Journal"));
  const body = el("tbody");
  const info = el("span", { class: "muted" });
  let top = size; // the newest seq on this page
  const newer = el("button", { onclick: () => show(Math.min(live.head || size, top + PAGE)) }, "newer");
  const older = el("button", { onclick: () => show(Math.max(PAGE, top - PAGE)) }, "older");
  async function show(t) {
    top = Math.max(1, t);
    const from = Math.max(1, top - PAGE + 1);
    const r = await rpc.call("ledger.entries", { from, limit: top - from + 1 });
    body.replaceChildren(...r.entries.slice().reverse().map(entryRow));
    info.textContent = "entries " + from + "–" + top + " of " + (live.head || size);
    newer.disabled = top >= (live.head || size);
    older.disabled = from <= 1;
  }
  live.listeners.add((e) => { // on the newest page, new entries appear at the top
    if (!document.body.contains(sec)) return;
    if (top === e.seq - 1) {
      top = e.seq;
      const tr = entryRow(e);
      tr.classList.add("fresh");
      body.prepend(tr);
      while (body.children.length > PAGE) body.lastChild.remove();
      info.textContent = "entries " + Math.max(1, top - PAGE + 1) + "–" + top + " of " + e.seq;
    } else {
      info.textContent = info.textContent.replace(/of \d+$/, "of " + e.seq);
      newer.disabled = false;
    }
  });
  sec.append(el("table", null, el("thead", null, el("tr", null, ["seq", "time", "type", "signer", "txid"].map((h) => el("th", null, h)))), body),
             el("div", { class: "pager" }, newer, older, info));
  await show(size);
  return sec;
}

async function homeView() {
  const [head, cp, assets] = await Promise.all([rpc.call("ledger.head"), rpc.call("ledger.checkpoint"),
                                                rpc.call("asset.list", { limit: 1000 })]);
  live.head = Math.max(live.head || 0, head.size);
  const headSec = el("section", { id: "head" }, el("h2", null, "Head"), kv([
    row("size", el("span", { id: "head-size" }, num(head.size))), row("hash", el("span", { class: "mono" }, head.hash)),
    row("Merkle root", el("span", { class: "mono" }, head.root)), row("time", when(head.time))]));
  live.listeners.add((e) => {
    const s = document.getElementById("head-size");
    if (s) s.textContent = num(e.seq);
  });
  const cpSec = el("section", { id: "checkpoint" }, el("h2", null, "Latest checkpoint"), el("pre", null, cp.checkpoint),
                   el("p", { class: "muted" }, "verifier key: ", el("code", null, cp.vkey)));
  const assetRows = assets.assets.map((a) => row(link("#/asset/" + encodeURIComponent(a.asset), a.asset), a.name, a.kind,
    a.currency, numCell(a.principal), numCell(a.units), (a.coupon_bps / 100).toFixed(2) + "%", a.maturity, a.rating,
    a.status, numCell(a.issued), numCell(a.holders)));
  const assetSec = el("section", { class: "wide", id: "assets" }, el("h2", null, "Assets"),
    assets.assets.length ? table(["asset", "name", "kind", "ccy", "principal", "units", "coupon", "maturity", "rating",
                                  "status", "issued", "holders"], assetRows) : el("p", { class: "muted" }, "No assets yet."));
  return [headSec, cpSec, assetSec, await journalSection(head.size)];
}

const COLORS = ["#2f5bd3", "#e07a1f", "#1f9e6e", "#b0399b", "#c9a227", "#3aa0c8", "#d1495b", "#6c5ce7", "#7a8b99"];

/* The cap table as a donut: one arc per holder (the largest eight, then the rest together). */
function capChart(holders, issued) {
  const sorted = holders.slice().sort((a, b) => b.units - a.units);
  const parts = sorted.slice(0, 8).map((h, i) => ({ label: short(h.account), units: h.units, color: COLORS[i] }));
  const rest = sorted.slice(8).reduce((s, h) => s + h.units, 0);
  if (rest > 0) parts.push({ label: (sorted.length - 8) + " others", units: rest, color: COLORS[8] });
  const total = issued || parts.reduce((s, p) => s + p.units, 0) || 1;
  const r = 60, c = 1000; // pathLength: browsers' own circle lengths differ slightly from 2πr
  const chart = svg("svg", { width: 180, height: 180, viewBox: "0 0 180 180", role: "img", "aria-label": "cap table" });
  chart.append(svg("circle", { cx: 90, cy: 90, r, fill: "none", stroke: "#e4e7ec", "stroke-width": 36 }));
  let at = 0;
  for (const p of parts) {
    const len = (p.units / total) * c;
    const arc = svg("circle", { cx: 90, cy: 90, r, pathLength: c, fill: "none", stroke: p.color, "stroke-width": 36,
      "stroke-dasharray": len + " " + (c - len), "stroke-dashoffset": -at, transform: "rotate(-90 90 90)", class: "slice" });
    const t = svg("title");
    t.textContent = p.label + ": " + num(p.units);
    arc.append(t);
    chart.append(arc);
    at += len;
  }
  const legend = el("div", { class: "legend" }, parts.map((p) => el("div", null,
    el("span", { class: "swatch", style: { background: p.color } }), el("span", { class: "mono" }, p.label),
    el("span", { class: "muted" }, (100 * p.units / total).toFixed(2) + "%"))));
  return el("div", { class: "chart" }, chart, legend);
}

async function assetView(id) {
  const a = await rpc.call("asset.get", { asset: id });
  let holders = [], cursor = null;
  do { // every page, up to HOLDERS_MAX rows
    const r = await rpc.call("asset.holders", { asset: id, cursor, limit: 1000 });
    holders = holders.concat(r.holders);
    cursor = r.next;
  } while (cursor && holders.length < HOLDERS_MAX);
  const terms = Object.entries(a).filter(([k]) => k !== "size").map(([k, v]) =>
    row(k, typeof v === "object" ? el("code", null, JSON.stringify(v)) : (typeof v === "number" ? num(v) : v)));
  const holderRows = holders.map((h) => row(el("span", { class: "mono" }, h.account), numCell(h.units), numCell(h.frozen),
    el("td", { class: "num" }, a.issued ? (100 * h.units / a.issued).toFixed(2) + "%" : "")));
  return [
    el("section", { id: "terms" }, el("h2", null, a.asset + " — " + a.name), kv(terms)),
    el("section", { id: "captable" }, el("h2", null, "Cap table"), capChart(holders, a.issued)),
    el("section", { class: "wide", id: "holders" }, el("h2", null, "Holders (" + holders.length + (cursor ? "+" : "") + ")"),
       table(["account", "units", "frozen", "share"], holderRows)),
  ];
}

async function entryView(seq) {
  const [e, cp] = await Promise.all([rpc.call("ledger.entry", { seq }), rpc.call("ledger.checkpoint")]);
  let pretty = e.tx;
  try { pretty = JSON.stringify(JSON.parse(e.tx), null, 2); } catch (_) { /* shown as stored */ }
  const fields = ["seq", "time", "prev", "hash", "txid", "sig"].map((k) =>
    row(k, k === "time" ? when(e[k]) + " (" + e[k] + ")" : el("span", { class: "mono" }, String(e[k]))));
  const keyInput = el("input", { type: "text", id: "vkey", value: cp.vkey, spellcheck: "false" });
  const out = el("div", { id: "verify-result" });
  const run = async () => {
    out.replaceChildren(el("p", { class: "muted" }, "checking…"));
    const r = await verifyEntry(seq, { vkey: keyInput.value.trim() });
    out.replaceChildren(el("p", { class: r.ok ? "ok" : "bad", id: "verify-verdict" }, r.ok ? "✓ verified" : "✗ NOT verified"),
      el("ul", null, r.steps.map((s) => el("li", null, el("span", { class: s.ok ? "ok" : "bad" }, s.ok ? "✓ " : "✗ "), s.what))));
  };
  return [
    el("section", { id: "entry" }, el("h2", null, "Entry " + e.seq), kv(fields),
       el("div", { class: "pager" }, e.seq > 1 ? link("#/entry/" + (e.seq - 1), "← previous") : "",
          link("#/entry/" + (e.seq + 1), "next →"))),
    el("section", { id: "tx" }, el("h2", null, "Transaction"), el("pre", { id: "tx-json" }, pretty)),
    el("section", { class: "wide", id: "verify" }, el("h2", null, "Verify in your browser"),
       el("p", { class: "muted" }, "Checks this entry against the latest checkpoint with WebCrypto: the txid and the " +
          "signer's signature, the entry hash, the checkpoint's Ed25519 signature under the verifier key below, and " +
          "the RFC 9162 inclusion proof to its root. Compare the key with the one the operator publishes: it is the " +
          "only thing trusted."), el("label", null, "verifier key ", keyInput),
       el("div", { class: "pager" }, el("button", { id: "verify-button", onclick: run }, "Verify")), out),
  ];
}

async function route() {
  const h = location.hash || "#/";
  live.listeners.clear(); // the views being replaced stop following the journal
  let m;
  try {
    let sections;
    if ((m = h.match(/^#\/asset\/(.+)$/))) sections = await assetView(decodeURIComponent(m[1]));
    else if ((m = h.match(/^#\/entry\/(\d+)$/))) sections = await entryView(Number(m[1]));
    else sections = await homeView();
    view().replaceChildren(...sections);
  } catch (e) {
    view().replaceChildren(errorBox(e));
  }
  document.body.dataset.view = h; // for tests: the view shown
}

// ---------------------------------------------------------------- verification (nothing from the server trusted)

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
function unhex(s) {
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error("not hex");
  return Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16));
}
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
function u64be(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}
async function ed25519Verify(pub, sig, msg) {
  const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, sig, msg);
}

/* A verifier key "<name>+<key id hex>+<base64(0x01 || pubkey)>" whose key id is its own. */
async function parseVkey(vkey) {
  const m = vkey.match(/^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/);
  if (!m) throw new Error("a verifier key is name+keyid+base64");
  const raw = b64(m[3]);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 verifier key");
  const id = (await sha256(concat(enc.encode(m[1]), Uint8Array.of(0x0a), raw))).slice(0, 4);
  if (hex(id) !== m[2]) throw new Error("the key id does not match the key");
  return { name: m[1], id, pub: raw.slice(1) };
}

/* C2SP signed note: the body (through its last "\n") signed by the trusted key. */
async function verifyCheckpoint(text, key) {
  const cut = text.indexOf("\n\n");
  if (cut < 0) throw new Error("not a signed note");
  const body = text.slice(0, cut + 1);
  const lines = body.split("\n");
  if (lines.length !== 4) throw new Error("a checkpoint body is three lines");
  let signed = false;
  for (const line of text.slice(cut + 2).split("\n")) {
    const m = line.match(/^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/);
    if (!m || m[1] !== key.name) continue;
    const sig = b64(m[2]);
    if (sig.length !== 68 || !equal(sig.slice(0, 4), key.id)) continue;
    if (await ed25519Verify(key.pub, sig.slice(4), enc.encode(body))) signed = true;
  }
  if (!/^[1-9][0-9]*$/.test(lines[1])) throw new Error("bad tree size");
  return { signed, size: BigInt(lines[1]), root: b64(lines[2]) };
}

/* RFC 9162 §2.1.3.2: the root a leaf and its inclusion path lead to. */
async function rootFromPath(index, size, leaf, path) {
  let fn = index, sn = size - 1n, r = leaf;
  for (const p of path) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

/* Every check of one entry; opts.vkey is the trusted key, opts.tamper ("path", "checkpoint", "entry") changes one
 * byte of what the server sent, to show that a forgery is caught. */
async function verifyEntry(seq, opts) {
  opts = opts || {};
  const steps = [];
  const step = (ok, what) => { steps.push({ ok: !!ok, what }); return !!ok; };
  try {
    if (!window.crypto || !crypto.subtle) throw new Error("WebCrypto needs a secure context (https, or localhost)");
    const key = await parseVkey(opts.vkey || (await rpc.call("ledger.checkpoint")).vkey);
    const cpr = await rpc.call("ledger.checkpoint");
    let note = cpr.checkpoint;
    if (opts.tamper === "checkpoint") note = note.replace(/\n(\d+)\n/, (m, n) => "\n" + (BigInt(n) + 1n) + "\n");
    const cp = await verifyCheckpoint(note, key);
    step(cp.signed, "checkpoint of size " + cp.size + " signed by " + key.name + " (Ed25519, key id " + hex(key.id) + ")");
    const e = await rpc.call("ledger.entry", { seq });
    if (opts.tamper === "entry") e.time += 1;
    const tx = enc.encode(e.tx);
    const txid = await sha256(tx);
    step(hex(txid) === e.txid, "txid = SHA-256(tx bytes)");
    const signer = unhex(JSON.parse(e.tx).signer || "");
    step(signer.length === 32 && await ed25519Verify(signer, unhex(e.sig), concat(enc.encode("TRANCHE/TX/1\n"), tx)),
         "the tx is signed by its signer " + short(hex(signer)));
    const entryBytes = concat(enc.encode("TRANCHE/ENTRY/1\n"), u64be(e.seq), u64be(e.time), unhex(e.prev), txid, unhex(e.sig));
    const leaf = await sha256(concat(Uint8Array.of(0), entryBytes));
    step(hex(leaf) === e.hash, "entry hash = SHA-256(0x00 || entry_bytes)");
    if (BigInt(seq) > cp.size) {
      step(false, "entry " + seq + " is newer than the checkpoint (size " + cp.size + "): try again in a second");
    } else {
      const pr = await rpc.call("ledger.proof", { seq, size: Number(cp.size) });
      const path = pr.path.map(unhex);
      if (opts.tamper === "path" && path.length) path[0][0] ^= 1;
      const root = await rootFromPath(BigInt(seq - 1), cp.size, leaf, path);
      step(root && equal(root, cp.root), "inclusion proof (" + path.length + " hashes) leads to the checkpoint's root");
    }
  } catch (err) {
    step(false, err.message || String(err));
  }
  return { ok: steps.length > 0 && steps.every((s) => s.ok), steps };
}

// ---------------------------------------------------------------- start

window.explorer = { rpc, verifyEntry, rootFromPath, parseVkey, verifyCheckpoint, live };

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  try {
    await rpc.ready;
    const st = await rpc.call("node.status");
    document.getElementById("chain").textContent = st.chain + " · tranched " + st.version;
    await startLive();
  } catch (e) {
    setLive(false, "offline");
  }
  route();
});
