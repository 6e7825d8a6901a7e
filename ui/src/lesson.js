// A live lesson: launch with live progress, then the lesson view (guide, stages, topology, a tab per
// presentation, checks, expiry). Everything it shows of the live lesson comes from its event stream.
import { ApiError, call, follow, get, token } from "./api.js";
import { netconfConsole } from "./netconf.js";
import { TerminalTab } from "./terminal.js";
import { topologyDiagram } from "./topology.js";
import { duration, h, setMain } from "./util.js";

const STEPS = [
  ["INITIALIZED", "Initialized"],
  ["BOOTING", "Booting endpoints"],
  ["CONFIGURATION", "Configuring"],
  ["READY", "Ready"],
];
const KEEPALIVE_MS = 5 * 60 * 1000;

async function findOrLaunch(slug) {
  const mine = await call("GET", "/api/v1/livelessons");
  const found = mine.find((ll) => ll.lesson === slug && ll.status !== "DELETING");
  if (found) return found.id;
  return (await call("POST", "/api/v1/livelessons", { lesson: slug })).id;
}

function problemText(error) {
  return error instanceof ApiError ? error.message : `the server could not be reached (${error.message})`;
}

export async function showLesson(slug) {
  const cleanups = [];
  const leave = () => cleanups.splice(0).forEach((fn) => fn());
  let lesson, topology;
  try {
    [lesson, topology] = await Promise.all([get(`/api/v1/lessons/${slug}`), get(`/api/v1/lessons/${slug}/topology`)]);
  } catch (error) {
    setMain("Lesson", h("h1", {}, "Lesson not found"), h("p", { class: "error", role: "alert" }, problemText(error)), h("a", { href: "#/" }, "Back to the catalog"));
    return leave;
  }

  // ------------------------------------------------------------------ launch and progress
  const steps = h("ol", { class: "steps" }, STEPS.map(([key, text]) => h("li", { dataset: { status: key } }, text)));
  const counts = h("p", { class: "counts", role: "status", "aria-live": "polite" });
  const endpointList = h("ul", { class: "endpoint-states" });
  const failure = h("div", { class: "failure", hidden: true });
  const progress = h(
    "section",
    { class: "progress", "aria-labelledby": "progress-title" },
    h("h2", { id: "progress-title" }, "Starting the lesson"),
    steps,
    counts,
    endpointList,
    failure,
  );
  const heading = h("h1", {}, lesson.name);
  const main = setMain(lesson.name, heading, progress);

  let view = null;
  let firstSeen = null;
  let readyAt = null;
  let lessonView = null;
  let stopFollowing = () => {};
  let livelessonId = null;

  const renderProgress = () => {
    if (!view) return;
    const index = STEPS.findIndex(([key]) => key === view.status);
    steps.querySelectorAll("li").forEach((li, i) => {
      li.className = i < index || view.status === "READY" ? "done" : i === index ? "current" : "";
      if (i === index) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    const started = Date.parse(view.createdAt);
    const until = readyAt ?? Date.now();
    counts.textContent = `${view.healthy} of ${view.total} endpoints healthy · ${duration((until - started) / 1000)} elapsed`;
    endpointList.replaceChildren(
      ...view.endpoints.map((e) =>
        h("li", { class: e.healthy ? "ok" : "" }, h("strong", {}, e.name), `: ${e.phase}`, e.reason ? ` — ${e.reason}` : ""),
      ),
    );
    if (view.status === "ERROR") {
      failure.hidden = false;
      const failed = view.endpoints.filter((e) => e.reason);
      failure.replaceChildren(
        h(
          "div",
          { role: "alert" },
          h("h3", {}, "The lesson could not start"),
          h("p", { class: "reason" }, view.error || "no reason was given"),
          failed.length ? h("ul", {}, failed.map((e) => h("li", {}, h("strong", {}, e.name), `: ${e.reason}`))) : null,
        ),
        h("button", { type: "button", class: "primary", onclick: retry }, "Retry"),
        " ",
        h("a", { href: "#/", class: "button" }, "Back to the catalog"),
      );
    } else {
      failure.hidden = true;
      failure.replaceChildren();
    }
  };

  const onStatus = (next) => {
    view = next;
    firstSeen ??= Date.now();
    if (view.status === "READY" && readyAt === null) readyAt = Date.now();
    if (lessonView) lessonView.update(view);
    else if (view.status === "READY") {
      lessonView = buildLessonView();
      progress.replaceWith(lessonView.element);
      lessonView.open();
      lessonView.update(view);
    } else renderProgress();
  };

  const start = async () => {
    try {
      livelessonId = await findOrLaunch(slug);
    } catch (error) {
      failure.hidden = false;
      failure.replaceChildren(
        h("div", { role: "alert" }, h("h3", {}, "The lesson could not start"), h("p", { class: "reason" }, problemText(error))),
        h("button", { type: "button", class: "primary", onclick: start }, "Retry"),
      );
      return;
    }
    stopFollowing = follow(
      livelessonId,
      onStatus,
      () => {
        if (lessonView) location.hash = "#/";
      },
      () => {},
    );
  };

  async function retry() {
    stopFollowing();
    failure.replaceChildren(h("p", { role: "status" }, "Starting again…"));
    view = null;
    readyAt = null;
    try {
      await call("DELETE", `/api/v1/livelessons/${livelessonId}`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    await start();
  }

  const ticker = setInterval(() => {
    if (!lessonView) renderProgress();
    else lessonView.tick();
  }, 1000);
  cleanups.push(() => clearInterval(ticker), () => stopFollowing(), () => lessonView?.dispose());
  await start();

  // ------------------------------------------------------------------ the lesson view
  function buildLessonView() {
    let expiresAt = Date.parse(view.expiresAt);
    let shownStage = -1;
    let lastTerminal = null;
    const statusPill = h("span", { class: "pill", role: "status" });
    const expiry = h("span", { class: "expiry" });
    const extend = h("button", { type: "button", onclick: () => keepalive() }, "Extend");
    const endButton = h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: async () => {
          endButton.disabled = true;
          await call("DELETE", `/api/v1/livelessons/${livelessonId}`).catch(() => {});
          location.hash = "#/";
        },
      },
      "End lesson",
    );
    const keepalive = async () => {
      try {
        const answer = await call("POST", `/api/v1/livelessons/${livelessonId}/keepalive`);
        expiresAt = Date.parse(answer.expiresAt);
      } catch {
        // The countdown stays; the next keepalive tries again.
      }
    };
    const keeping = setInterval(keepalive, KEEPALIVE_MS);

    // Guide and stages.
    const stageTitle = h("h2", { id: "stage-title" });
    const previous = h("button", { type: "button", onclick: () => changeStage(view.stage - 1) }, "← Previous stage");
    const next = h("button", { type: "button", class: "primary", onclick: () => changeStage(view.stage + 1) }, "Next stage →");
    const stageNote = h("p", { class: "muted", role: "status" });
    const guide = h("div", { class: "guide-body" });
    const checkButton = h("button", { type: "button", class: "primary", onclick: () => runChecks() }, "Check my work");
    const checkResults = h("ul", { class: "check-results", "aria-live": "polite" });
    const checkStatus = h("p", { role: "status" });
    const checks = h("section", { class: "checks", "aria-labelledby": "checks-title" }, h("h3", { id: "checks-title" }, "Checks"), checkButton, checkStatus, checkResults);
    const guidePane = h(
      "section",
      { class: "guide-pane", "aria-labelledby": "stage-title" },
      h("nav", { class: "stage-nav", "aria-label": "Stages" }, previous, stageTitle, next),
      stageNote,
      guide,
      checks,
    );

    const changeStage = async (stage) => {
      previous.disabled = next.disabled = true;
      stageNote.textContent = `Moving to stage ${stage + 1}…`;
      try {
        await call("PUT", `/api/v1/livelessons/${livelessonId}/stage`, { stage });
      } catch (error) {
        stageNote.textContent = `The stage did not change: ${problemText(error)}`;
        previous.disabled = next.disabled = false;
      }
    };
    const runChecks = async () => {
      checkButton.disabled = true;
      checkStatus.textContent = "Running the checks…";
      checkResults.replaceChildren();
      try {
        await call("POST", `/api/v1/livelessons/${livelessonId}/verify`);
      } catch (error) {
        checkStatus.textContent = `The checks could not run: ${problemText(error)}`;
        checkButton.disabled = false;
      }
    };
    const renderChecks = () => {
      const stage = lesson.stages[view.stage];
      checks.hidden = !stage || stage.checkCount === 0;
      const verification = view.verification;
      if (!verification || verification.stage !== view.stage) {
        checkButton.disabled = view.status !== "READY";
        return;
      }
      checkButton.disabled = verification.status === "running" || view.status !== "READY";
      checkResults.replaceChildren(
        ...verification.results.map((r) =>
          h(
            "li",
            { class: r.passed ? "passed" : "failed", dataset: { check: r.name } },
            h("strong", {}, r.passed ? "Passed: " : "Not yet: "),
            r.description || r.name,
            r.message && r.message !== r.description ? h("span", { class: "muted" }, ` — ${r.message}`) : null,
          ),
        ),
      );
      const passed = verification.results.filter((r) => r.passed).length;
      checkStatus.textContent =
        verification.status === "running"
          ? `Running the checks… ${verification.results.length} of ${stage.checkCount} done`
          : verification.status === "error"
            ? `The checks could not run: ${verification.error}`
            : `${passed} of ${verification.results.length} checks passed`;
    };

    const loadGuide = async () => {
      try {
        const answer = await call("GET", `/api/v1/livelessons/${livelessonId}/guide`);
        const body = h("div");
        body.innerHTML = answer.html; // Syringe's own rendering of the curriculum's guide (docs/API.md)
        for (const pre of body.querySelectorAll("pre")) decorateSnippet(pre);
        guide.replaceChildren(...body.childNodes);
      } catch (error) {
        guide.replaceChildren(h("p", { class: "error", role: "alert" }, `The guide could not be read: ${problemText(error)}`));
      }
    };
    const decorateSnippet = (pre) => {
      const text = () => pre.textContent.replace(/\n$/, "");
      const copy = h("button", { type: "button", class: "small" }, "Copy");
      copy.addEventListener("click", async () => {
        await navigator.clipboard?.writeText(text()).catch(() => {});
        copy.textContent = "Copied";
        setTimeout(() => (copy.textContent = "Copy"), 1500);
      });
      const target = () => lastTerminal ?? terminalKeys[0];
      const run = h("button", { type: "button", class: "small", onclick: () => runSnippet(target(), text()) }, "Run in terminal");
      run.addEventListener("focus", () => run.setAttribute("aria-label", `Run in terminal: ${tabs[target()]?.label ?? ""}`));
      const wrapper = h("div", { class: "snippet" }, h("div", { class: "snippet-tools" }, copy, terminalKeys.length ? run : null));
      pre.replaceWith(wrapper);
      wrapper.prepend(pre);
      pre.tabIndex = 0;
    };

    // Tabs: the diagram, then one per presentation.
    const tabs = {};
    const terminalKeys = [];
    const tablist = h("div", { class: "tablist", role: "tablist", "aria-label": "Endpoints" });
    const panels = h("div", { class: "panels" });
    const diagram = topologyDiagram(topology, (endpoint) => {
      const key = Object.keys(tabs).find((k) => tabs[k].endpoint === endpoint);
      if (key) select(key, true);
    });
    const addTab = (key, labelText, endpoint, make) => {
      const tab = h("button", {
        type: "button",
        role: "tab",
        id: `tab-${key}`,
        "aria-controls": `panel-${key}`,
        "aria-selected": "false",
        tabindex: -1,
        onclick: () => select(key, true),
      }, labelText);
      const panel = h("div", { role: "tabpanel", id: `panel-${key}`, "aria-labelledby": `tab-${key}`, hidden: true, class: "panel" });
      tabs[key] = { tab, panel, label: labelText, endpoint, make, made: null };
      tablist.append(tab);
      panels.append(panel);
    };
    for (const endpoint of lesson.endpoints) {
      for (const p of endpoint.presentations) {
        const key = `${endpoint.name}-${p.name}`;
        const labelText = `${endpoint.name} · ${p.name}`;
        const access = () =>
          view.endpoints.find((e) => e.name === endpoint.name)?.presentations.find((q) => q.name === p.name)?.access ?? {};
        if (p.type === "ssh") {
          terminalKeys.push(key);
          addTab(key, labelText, endpoint.name, () => new TerminalTab(access().terminalUrl, labelText));
        } else if (p.type === "http") {
          addTab(key, labelText, endpoint.name, () => webPage(access().proxyUrl, labelText));
        } else if (p.type === "netconf") {
          addTab(key, labelText, endpoint.name, () => ({ element: netconfConsole(access().netconf.rpcUrl, labelText, key) }));
        }
      }
    }
    const select = (key, focus) => {
      for (const [k, t] of Object.entries(tabs)) {
        const on = k === key;
        t.tab.setAttribute("aria-selected", String(on));
        t.tab.tabIndex = on ? 0 : -1;
        t.panel.hidden = !on;
      }
      const chosen = tabs[key];
      if (!chosen.made) {
        chosen.made = chosen.make();
        chosen.panel.append(chosen.made.element);
      }
      chosen.made.show?.(focus);
      if (terminalKeys.includes(key)) lastTerminal = key;
      if (focus && !terminalKeys.includes(key)) chosen.tab.focus();
    };
    tablist.addEventListener("keydown", (event) => {
      const keys = Object.keys(tabs);
      const current = keys.findIndex((k) => tabs[k].tab === document.activeElement);
      if (current < 0) return;
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -current, End: keys.length - 1 - current };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const target = keys[(current + moves[event.key] + keys.length) % keys.length];
      select(target, false);
      tabs[target].tab.focus();
    });
    const runSnippet = (key, snippet) => {
      if (!key) return;
      select(key, false);
      tabs[key].made.run(snippet);
    };

    // The diagram stays in view above the tabs: it is the map of what the tabs open.
    const workPane = h("section", { class: "work-pane", "aria-label": "Endpoints" }, diagram.element, tablist, panels);
    const element = h(
      "div",
      { class: "lesson" },
      h(
        "div",
        { class: "lesson-bar" },
        statusPill,
        h("span", { class: "bar-spacer" }),
        expiry,
        extend,
        endButton,
      ),
      h("div", { class: "lesson-grid" }, guidePane, workPane),
    );
    // Called once the view is in the document: xterm.js measures its cells when it opens.
    const open = () => {
      if (Object.keys(tabs).length) select(terminalKeys[0] ?? Object.keys(tabs)[0], false);
    };

    const update = (latest) => {
      statusPill.textContent = latest.status === "READY" ? "Ready" : latest.status === "CONFIGURATION" ? "Configuring…" : latest.status;
      statusPill.className = `pill status-${latest.status.toLowerCase()}`;
      diagram.update(latest);
      if (latest.stage !== shownStage && latest.status === "READY") {
        shownStage = latest.stage;
        loadGuide();
        checkResults.replaceChildren();
        checkStatus.textContent = "";
      }
      const stage = lesson.stages[latest.stage];
      stageTitle.textContent = `Stage ${latest.stage + 1} of ${lesson.stages.length}: ${stage?.description ?? ""}`;
      // Only the moves that exist are offered; while the endpoints are being configured, none.
      previous.hidden = latest.stage === 0;
      next.hidden = latest.stage === lesson.stages.length - 1;
      previous.disabled = next.disabled = latest.status !== "READY";
      stageNote.textContent =
        latest.status === "CONFIGURATION"
          ? "Configuring the endpoints for this stage…"
          : latest.status === "ERROR"
            ? `Error: ${latest.error}`
            : "";
      renderChecks();
    };
    const tick = () => {
      const left = (expiresAt - Date.now()) / 1000;
      expiry.textContent = left > 0 ? `Expires in ${duration(left)}` : "Expired";
    };
    tick();
    const dispose = () => {
      clearInterval(keeping);
      for (const t of Object.values(tabs)) t.made?.dispose?.();
    };
    return { element, update, tick, dispose, open };
  }

  return leave;
}

// An http presentation in an iframe. The proxy takes the token once in its query and answers with an
// HttpOnly cookie scoped to the presentation's prefix: a fetch does that, so the token never becomes the
// frame's URL (or its history entry, or a Referer).
function webPage(proxyUrl, label) {
  const frame = h("iframe", { title: label, class: "web", referrerpolicy: "no-referrer" });
  const status = h("span", { class: "muted", role: "status" }, "Loading…");
  const reload = h("button", { type: "button", onclick: () => load() }, "Reload");
  const newTab = h("a", { href: proxyUrl, target: "_blank", rel: "noopener noreferrer" }, "Open in a new tab");
  const element = h("div", { class: "webpage" }, h("div", { class: "toolbar" }, reload, newTab, status), frame);
  const load = async () => {
    status.textContent = "Loading…";
    try {
      await fetch(`${proxyUrl}?token=${encodeURIComponent(await token())}`, { credentials: "same-origin" });
      frame.src = proxyUrl;
      status.textContent = "";
    } catch (error) {
      status.textContent = `The page could not be reached: ${error.message}`;
    }
  };
  let loaded = false;
  return {
    element,
    show() {
      if (!loaded) {
        loaded = true;
        load();
      }
    },
  };
}
