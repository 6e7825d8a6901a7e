// Drives Debian's chromium with playwright-core (from ui/node_modules) through one scenario of the web front
// end, against a running Syringe. Usage: node drive.mjs <catalog|journey|error> <base URL> <artifacts dir>.
// Prints one line of JSON (what the pytest side asserts on); any failed wait exits non-zero with the reason.
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(repo, "ui", "package.json"));
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [scenario, base, artifacts] = process.argv.slice(2);
const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 420, height: 900 };
const LONG = 240_000;

// Records, inside the page, what a person would have seen go by: the launch's steps and counts, the status
// pill, and when the catalog's first card appeared. Init scripts are not subject to the page's CSP.
function recorder() {
  window.__seen = { steps: [], counts: [], pills: [], catalogAt: null };
  const note = (list, value) => {
    if (value && list[list.length - 1] !== value) list.push(value);
  };
  new MutationObserver(() => {
    note(window.__seen.steps, document.querySelector(".steps [aria-current=step]")?.textContent);
    note(window.__seen.counts, document.querySelector(".progress .counts")?.textContent);
    note(window.__seen.pills, document.querySelector(".pill")?.textContent);
    if (window.__seen.catalogAt === null && document.querySelector(".card")) window.__seen.catalogAt = performance.now();
  }).observe(document, { childList: true, subtree: true, characterData: true });
}

async function axe(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
}

async function overflows(page) {
  // After a resize the terminal refits on its ResizeObserver's next callback: judge the settled layout.
  const deadline = Date.now() + 3_000;
  for (;;) {
    const wide = await page.evaluate(
      () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() =>
        done(document.documentElement.scrollWidth > window.innerWidth + 1)))),
    );
    if (!wide || Date.now() > deadline) return wide;
    await page.waitForTimeout(100);
  }
}

function terminalRows(page, panel) {
  return page.$$eval(`#panel-${panel} .xterm-rows > div`, (rows) => rows.map((r) => r.textContent.replace(/\u00a0/g, " ").trimEnd()));
}

async function waitForRow(page, panel, test, what) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const rows = await terminalRows(page, panel);
    if (rows.some(test)) return rows;
    if (Date.now() > deadline) throw new Error(`the ${panel} terminal never showed ${what}; it shows:\n${rows.join("\n")}`);
    await page.waitForTimeout(200);
  }
}

// Presses the "Run in terminal" button of the guide's snippet whose text is ``text``.
async function runSnippet(page, text) {
  const index = await page.$$eval(".snippet pre", (pres, wanted) => pres.findIndex((p) => p.textContent.trim() === wanted), text);
  if (index < 0) throw new Error(`no snippet ${JSON.stringify(text)} in the guide`);
  await page.locator(".snippet").nth(index).locator("button", { hasText: "Run in terminal" }).click();
}

async function liveLessons(page) {
  return page.evaluate(async () => {
    const response = await fetch("/api/v1/livelessons", { headers: { Authorization: `Bearer ${sessionStorage.getItem("syringe.token")}` } });
    return response.json();
  });
}

async function catalog(page, result) {
  await page.goto(`${base}/`);
  await page.waitForSelector(".card");
  result.paint = await page.evaluate(() => ({
    firstContentfulPaintMs: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
    catalogRenderedMs: window.__seen.catalogAt,
    domContentLoadedMs: performance.getEntriesByType("navigation")[0]?.domContentLoadedEventEnd ?? null,
  }));
  result.categories = await page.$$eval(".category h2", (els) => els.map((e) => e.textContent));
  result.collections = await page.$$eval(".category h3", (els) => els.map((e) => e.textContent));
  result.cards = await page.$$eval(".card", (cards) =>
    cards.map((card) => ({
      slug: card.dataset.slug,
      launch: !!card.querySelector("a.button"),
      cannot: card.querySelector(".cannot")?.textContent ?? null,
      facts: Object.fromEntries([...card.querySelectorAll("dt")].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])),
    })),
  );
  const shown = () => page.$$eval(".card", (cards) => cards.map((c) => c.dataset.slug));
  await page.fill("#lesson-search", "netconf");
  result.searchNetconf = await shown();
  await page.fill("#lesson-search", "demo");
  result.searchTagDemo = await shown();
  await page.fill("#lesson-search", "");
  result.axe = await axe(page);
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: join(artifacts, "catalog.png") });
  // The keyboard: the first Tab reaches the skip link, and focus is drawn.
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press("Tab");
  result.firstFocus = await page.evaluate(() => ({
    text: document.activeElement.textContent,
    outline: getComputedStyle(document.activeElement).outlineStyle,
  }));
  await page.setViewportSize(NARROW);
  result.narrowOverflows = await overflows(page);
  await page.screenshot({ path: join(artifacts, "catalog-narrow.png") });
}

async function journey(page, result) {
  await page.goto(`${base}/`);
  await page.click('a[aria-label="Launch Two Hosts and a Link"]');
  await page.waitForSelector(".progress .steps");
  await page.screenshot({ path: join(artifacts, "progress.png") });
  await page.waitForSelector(".lesson", { timeout: LONG });
  result.hash = await page.evaluate(() => location.hash);
  result.tokenInUrl = page.url().includes("token");

  // The diagram: both sides' interfaces and addresses, and each endpoint's state.
  await page.waitForFunction(() => document.querySelectorAll(".node.state-ok").length === 2, null, { timeout: LONG });
  result.diagramText = await page.$eval("svg.topology", (s) => [...s.querySelectorAll("text")].map((t) => t.textContent).join(" | "));
  // The terminal: opened from the diagram.
  await page.click('g.node[data-endpoint="linux1"]');
  result.selectedTab = await page.$eval('[role=tab][aria-selected=true]', (t) => t.textContent);
  await page.waitForFunction(() => document.querySelector("#panel-linux1-cli .term-status")?.textContent === "Connected", null, { timeout: 60_000 });
  await waitForRow(page, "linux1-cli", (r) => /[$#] ?$/.test(r), "a prompt");
  await page.click("#panel-linux1-cli .term-screen");
  await page.keyboard.type("hostname\n");
  await waitForRow(page, "linux1-cli", (r) => r.trim() === "linux1", "hostname's answer");
  await page.keyboard.type("ping -c 2 10.12.0.2\n");
  const rows = await waitForRow(page, "linux1-cli", (r) => /2 packets transmitted, 2 (packets )?received/.test(r), "ping's summary");
  result.pingLine = rows.find((r) => /packets transmitted/.test(r));
  // A guide's snippet, run in the terminal by its button.
  const snippets = await page.$$eval(".snippet pre", (pres) => pres.map((p) => p.textContent.trim()));
  result.snippets = snippets;
  await runSnippet(page, "ip address");
  await waitForRow(page, "linux1-cli", (r) => r.includes("10.12.0.1/24"), "the address from the snippet");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(artifacts, "lesson.png") });
  result.axe = await axe(page);

  // The http presentation in its frame: the page arrives, and the token is not in the frame's address.
  await page.click('[role=tab]:text("linux2 · web")');
  await page.waitForFunction(() => (document.querySelector("iframe.web")?.contentDocument?.body?.innerText ?? "").length > 0, null, { timeout: 60_000 });
  result.frame = await page.$eval("iframe.web", (f) => ({ url: f.contentWindow.location.href, text: f.contentDocument.body.innerText.slice(0, 300) }));
  // Tabs follow the arrow keys.
  await page.focus("#tab-linux1-cli");
  await page.keyboard.press("ArrowRight");
  result.afterArrow = await page.$eval('[role=tab][aria-selected=true]', (t) => t.textContent);

  // Expiry and extend.
  result.expiry = await page.$eval(".expiry", (e) => e.textContent);
  await page.click('button:text("Extend")');
  await page.waitForTimeout(300);
  result.expiryAfterExtend = await page.$eval(".expiry", (e) => e.textContent);

  // The next stage: the stage changes, its guide arrives, then its checks run.
  await page.click('button:text("Next stage →")');
  await page.waitForFunction(() => document.querySelector("#stage-title")?.textContent.startsWith("Stage 2 of 2"), null, { timeout: LONG });
  await page.waitForFunction(() => document.querySelector(".guide-body")?.textContent.includes("Leave a note"), null, { timeout: LONG });
  await page.waitForFunction(() => document.querySelector(".pill")?.textContent === "Ready", null, { timeout: LONG });
  const checkRun = async () => {
    await page.click('button:text("Check my work")');
    await page.waitForFunction(() => /checks passed|could not run/.test(document.querySelector(".checks [role=status]")?.textContent ?? ""), null, { timeout: LONG });
    return page.$$eval(".check-results li", (lis) => lis.map((li) => ({ check: li.dataset.check, passed: li.classList.contains("passed") })));
  };
  result.checksBefore = await checkRun();
  // Snippets run in the terminal last shown: linux1's, opened again from the diagram.
  await page.click('g.node[data-endpoint="linux1"]');
  await runSnippet(page, "echo done > /tmp/note");
  await page.keyboard.type("cat /tmp/note\n");
  await waitForRow(page, "linux1-cli", (r) => r.trim() === "done", "the note");
  result.checksAfter = await checkRun();
  result.pills = await page.evaluate(() => window.__seen.pills);
  result.steps = await page.evaluate(() => window.__seen.steps);
  result.counts = await page.evaluate(() => window.__seen.counts);

  await page.setViewportSize(NARROW);
  result.narrowOverflows = await overflows(page);
  await page.screenshot({ path: join(artifacts, "lesson-narrow.png"), fullPage: true });
  await page.setViewportSize(WIDE);

  // End the lesson: back to the catalog, and the live lesson goes.
  await page.click('button:text("End lesson")');
  await page.waitForSelector(".card");
  const deadline = Date.now() + 60_000;
  let left = await liveLessons(page);
  while (left.length && Date.now() < deadline) {
    await page.waitForTimeout(500);
    left = await liveLessons(page);
  }
  result.leftAfterEnd = left.map((ll) => ll.status);
}

async function error(page, result) {
  await page.goto(`${base}/#/lesson/missing-disk`);
  await page.waitForSelector(".failure [role=alert]", { timeout: LONG });
  result.first = await page.$eval(".failure", (f) => f.textContent);
  result.retryButton = await page.$$eval(".failure button", (bs) => bs.map((b) => b.textContent));
  result.firstIds = (await liveLessons(page)).map((ll) => ll.id);
  await page.screenshot({ path: join(artifacts, "error.png") });
  result.axe = await axe(page);
  await page.click('.failure button:text("Retry")');
  await page.waitForFunction(() => !document.querySelector(".failure [role=alert]"), null, { timeout: LONG });
  await page.waitForSelector(".failure [role=alert]", { timeout: LONG });
  result.second = await page.$eval(".failure", (f) => f.textContent);
  result.secondIds = (await liveLessons(page)).filter((ll) => ll.status !== "DELETING").map((ll) => ll.id);
}

const scenarios = { catalog, journey, error };
const profile = mkdtempSync(join(tmpdir(), "syringe-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: WIDE,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const result = { scenario, consoleProblems: [], pageErrors: [] };
try {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await context.addInitScript(recorder);
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on("console", (m) => {
    if (m.type() === "error" || /Content Security Policy/i.test(m.text())) result.consoleProblems.push(m.text());
  });
  page.on("pageerror", (e) => result.pageErrors.push(String(e)));
  await scenarios[scenario](page, result);
} catch (problem) {
  console.error(JSON.stringify(result, null, 1));
  console.error(problem.stack || String(problem));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (!process.exitCode) console.log(JSON.stringify(result));
