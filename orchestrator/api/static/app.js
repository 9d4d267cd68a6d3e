// orchestrator UI: auto-refresh of the executions list, state details and live updates of an execution.
// Actions (stop, redrive, reset, aliases) are plain forms confirmed on a page of their own: no script.
// Plain JavaScript, no dependencies; the pages work without it (minus refresh and details).
"use strict";

const ICONS = { succeeded: "✓", failed: "✗", caught: "↪", running: "…", "not-reached": "·" };
const STATUSES = Object.keys(ICONS);

function setupExecutionsList() {
  const box = document.getElementById("executions-table");
  const toggle = document.getElementById("auto-refresh");
  if (!box || !toggle) return;
  const url = box.dataset.refreshUrl;
  async function refresh() {
    if (!toggle.checked || document.hidden) return;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.ok) box.innerHTML = await response.text();
    } catch (err) {
      /* offline for a moment: try again at the next tick */
    }
  }
  setInterval(refresh, 5000);
}

function pretty(text) {
  if (text === null || text === undefined || text === "") return "—";
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (err) { return String(text); }
}

// The "Reset here…" button of a history row added by a live update (the page renders the others).
function resetCell(id) {
  const td = document.createElement("td");
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "link reset-here";
  button.setAttribute("form", "reset-form");
  button.name = "toEvent";
  button.value = String(id);
  button.setAttribute("aria-label", "Reset to after event " + id);
  button.textContent = "Reset here…";
  td.appendChild(button);
  return td;
}

function setupExecution() {
  const dataNode = document.getElementById("states-data");
  const svg = document.getElementById("graph");
  if (!dataNode || !svg) return;
  let states = JSON.parse(dataNode.textContent);
  let selected = null;

  function show(key) {
    const s = states[key];
    if (!s) return;
    selected = key;
    for (const g of svg.querySelectorAll(".state")) g.classList.toggle("selected", g.dataset.key === key);
    document.getElementById("details-hint").hidden = true;
    document.getElementById("details-body").hidden = false;
    document.getElementById("d-name").textContent = key;
    const badge = document.getElementById("d-status");
    badge.textContent = s.status.replace("-", " ");
    badge.className = "badge s-" + s.status;
    document.getElementById("d-visits").textContent = String(s.visits);
    document.getElementById("d-entered").textContent = s.enteredEvent ? String(s.enteredEvent) : "—";
    document.getElementById("d-scope").textContent = s.scope || "top level";
    const errorBox = document.getElementById("d-error-box");
    const error = s.error || (s.worstVisit && s.worstVisit.error);
    const cause = s.error ? s.cause : s.worstVisit && s.worstVisit.cause;
    errorBox.hidden = !error;
    document.getElementById("d-error").textContent = error || "";
    document.getElementById("d-cause").textContent = cause || "";
    const body = document.getElementById("d-attempts");
    body.replaceChildren();
    (s.attempts || []).forEach((a, i) => {
      const tr = document.createElement("tr");
      for (const text of [String(i + 1), String(a.event), a.outcome, a.error ? a.error + ": " + (a.cause || "") : ""]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    });
    if (!(s.attempts || []).length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 4; td.className = "empty"; td.textContent = "No task attempts.";
      tr.appendChild(td); body.appendChild(tr);
    }
    document.getElementById("d-input").textContent = pretty(s.input);
    document.getElementById("d-output").textContent = pretty(s.output);
  }

  svg.addEventListener("click", (event) => {
    const g = event.target.closest(".state");
    if (g) show(g.dataset.key);
  });
  svg.addEventListener("keydown", (event) => {
    const g = event.target.closest(".state");
    if (g && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      show(g.dataset.key);
    }
  });

  function recolor() {
    for (const g of svg.querySelectorAll(".state")) {
      const s = states[g.dataset.key];
      const status = s ? s.status : "not-reached";
      for (const name of STATUSES) g.classList.toggle("s-" + name, name === status);
      const icon = g.querySelector(".icon");
      if (icon) icon.textContent = ICONS[status];
      const type = g.getAttribute("aria-label").replace(/:[^:]*$/, "");
      g.setAttribute("aria-label", type + ": " + status.replace("-", " "));
      const title = g.querySelector("title");
      if (title) title.textContent = type + ": " + status;
    }
  }

  const live = document.getElementById("live");
  if (!live || live.dataset.running !== "true" || !window.EventSource) return;
  const source = new EventSource(live.dataset.url);
  source.addEventListener("update", (event) => {
    const update = JSON.parse(event.data);
    states = update.states;
    recolor();
    if (selected) show(selected);
    const status = document.getElementById("exec-status");
    const stopForm = document.getElementById("stop-form");
    if (stopForm && update.status !== "RUNNING") stopForm.hidden = true;
    status.textContent = update.status;
    status.className = "badge st-" + update.status.toLowerCase();
    document.getElementById("exec-events").textContent = String(update.events);
    if (update.stopDate) document.getElementById("exec-stop").textContent = update.stopDate;
    if (update.duration) document.getElementById("exec-duration").textContent = update.duration;
    const errorLine = document.getElementById("exec-error");
    if (update.error) {
      errorLine.hidden = false;
      errorLine.replaceChildren();
      const strong = document.createElement("strong");
      strong.textContent = update.error;
      errorLine.append(strong, ": " + (update.cause || ""));
    }
    for (const name of STATUSES) {
      const n = document.querySelector('[data-summary="' + name + '"]');
      if (n) n.textContent = String(update.summary[name]);
    }
    const body = document.getElementById("history-body");
    if (body && body.dataset.live === "true") {
      for (const e of update.newEvents) {
        if (document.getElementById("event-" + e.id)) continue;
        const tr = document.createElement("tr");
        tr.id = "event-" + e.id;
        if (e.error) tr.className = "err";
        const cells = [String(e.id), e.type, e.state + (e.scope ? " " + e.scope : ""), e.time.slice(11, 23), e.detail];
        cells.forEach((text, i) => {
          const td = document.createElement("td");
          td.textContent = text;
          if (i === 3) { td.className = "nowrap"; td.title = e.time; }
          if (i === 4) td.className = "detail";
          tr.appendChild(td);
        });
        if (body.dataset.reset === "true") tr.appendChild(resetCell(e.id));
        body.appendChild(tr);
      }
    }
  });
  source.addEventListener("end", () => { source.close(); live.dataset.running = "false"; });
}

document.addEventListener("DOMContentLoaded", () => {
  setupExecutionsList();
  setupExecution();
});
