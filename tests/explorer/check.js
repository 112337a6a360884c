// check.js — drives the explorer page in headless Chromium (playwright-core).
//
//   node check.js MODULES_DIR PORT SCREENSHOT ASSET HOLDER_A:UNITS HOLDER_B:UNITS
//
// Prints one line per check ("ok - what" / "not ok - what # detail") for
// test_explorer.py, which owns the node.  When the page is on the journal it
// prints "ready-for-tx" and waits for "tx SEQ" on stdin: the line test_explorer
// writes after submitting a tx, whose row must then appear without a reload.
"use strict";
const path = require("path");
const readline = require("readline");

const [modules, port, screenshot, asset, ...holders] = process.argv.slice(2);
const { chromium } = require(path.join(modules, "node_modules", "playwright-core"));
const base = "http://127.0.0.1:" + port + "/";
let failed = 0;

function check(ok, what, detail) {
  if (!ok) failed++;
  console.log((ok ? "ok - " : "not ok - ") + what + (!ok && detail !== undefined ? " # " + JSON.stringify(detail).slice(0, 400) : ""));
}

const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(base) && !r.url().startsWith("ws://127.0.0.1:" + port)) external.push(r.url()); });
  try {
    const resp = await page.goto(base);
    const csp = (await resp.allHeaders())["content-security-policy"] || "";
    check(resp.status() === 200 && csp.includes("script-src 'self'"), "GET / serves the page with a Content-Security-Policy", csp);
    await page.waitForSelector("#assets table", { timeout: 15000 });
    check((await page.title()) === "tranche explorer", "the page loads");
    const assets = await page.textContent("#assets");
    check(assets.includes(asset) && assets.includes("term_loan"), "the asset list shows " + asset + " with its terms", assets);
    const cp = await page.textContent("#checkpoint pre");
    check(/\n\d+\n/.test(cp) && cp.includes("\u2014 "), "the latest checkpoint (a signed note) is shown", cp);
    const headSize = Number((await page.textContent("#head-size")).replace(/,/g, ""));
    check(headSize >= 9, "the head is shown (size " + headSize + ")");
    await page.waitForSelector("#live.on", { timeout: 10000 });
    check(true, "the journal subscription is live (WebSocket)");

    await page.goto(base + "#/asset/" + asset);
    await page.waitForSelector("#holders table", { timeout: 10000 });
    const rows = await page.$$eval("#holders tbody tr", (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
    const want = holders.map((h) => h.split(":"));
    check(rows.length === want.length && want.every(([acct, units]) => rows.some((r) => r[0] === acct &&
          r[1].replace(/,/g, "") === units)), "the holders table lists each holder with its units", rows);
    const slices = await page.$$eval("#captable svg circle.slice", (cs) => cs.map((c) => c.getAttribute("stroke-dasharray")));
    check(slices.length === want.length, "the cap-table chart (inline SVG) has one slice per holder", slices);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-asset.png"), fullPage: true });

    await page.goto(base + "#/");
    await page.waitForSelector("#journal tbody tr", { timeout: 10000 });
    await page.waitForSelector("#live.on", { timeout: 10000 });
    console.log("ready-for-tx");
    const m = (await nextLine()).match(/^tx (\d+)$/);
    const seq = m ? m[1] : "?";
    let appeared = false;
    try {
      await page.waitForFunction((s) => {
        const a = document.querySelector("#journal tbody tr td a");
        return a && a.textContent === s;
      }, seq, { timeout: 10000 });
      appeared = true;
    } catch (_) { /* reported below */ }
    check(appeared, "the journal shows entry " + seq + " once it is committed, without a reload");
    const sizeNow = (await page.textContent("#head-size")).replace(/,/g, "");
    check(sizeNow === seq, "the head size follows the live feed", sizeNow);
    await page.screenshot({ path: screenshot, fullPage: true });

    await page.goto(base + "#/entry/5");
    await page.waitForSelector("#tx-json", { timeout: 10000 });
    const tx = JSON.parse(await page.textContent("#tx-json"));
    check(tx.type === "asset.create" && tx.asset === asset, "entry 5's page shows its tx JSON", tx);
    await page.click("#verify-button");
    await page.waitForSelector("#verify-verdict", { timeout: 15000 });
    const verdict = await page.textContent("#verify-verdict");
    const steps = await page.$$eval("#verify-result li", (lis) => lis.map((li) => li.textContent));
    check(verdict.includes("verified") && !verdict.includes("NOT") && steps.length === 5,
          "Verify: the checkpoint signature, txid, tx signature, entry hash and inclusion proof all check in the browser",
          { verdict, steps });
    for (const tamper of ["path", "checkpoint", "entry"]) {
      const r = await page.evaluate((t) => window.explorer.verifyEntry(5, { tamper: t }), tamper);
      check(!r.ok, "a tampered " + tamper + " fails verification", r.steps.filter((s) => !s.ok));
    }
    const other = await page.evaluate(async () => {
      const cp = await window.explorer.rpc.call("ledger.checkpoint");
      // the same name and key id format, another key: what a server substituting its own key would offer
      const raw = new Uint8Array(33);
      raw[0] = 1;
      raw.set(crypto.getRandomValues(new Uint8Array(32)), 1);
      const name = cp.vkey.split("+")[0];
      const enc = new TextEncoder();
      const idIn = new Uint8Array([...enc.encode(name), 10, ...raw]);
      const id = new Uint8Array(await crypto.subtle.digest("SHA-256", idIn)).slice(0, 4);
      const vkey = name + "+" + Array.from(id, (b) => b.toString(16).padStart(2, "0")).join("") + "+" + btoa(String.fromCharCode(...raw));
      return window.explorer.verifyEntry(5, { vkey });
    });
    check(!other.ok, "verification under another verifier key fails (only the given key is trusted)", other.steps);
    check(errors.length === 0, "no script errors in the page", errors);
    check(external.length === 0, "nothing is fetched from anywhere but this node (no CDN)", external);
  } catch (e) {
    check(false, "the browser checks ran", e.stack || String(e));
  } finally {
    await browser.close();
    lines.close();
  }
  process.exit(failed ? 1 : 0);
})();
