// weft UI: what updates live. No framework: the server renders every page;
// this script fetches the page again and swaps the parts marked data-live,
// and follows a run's logs as server-sent events.
"use strict";

const LIVE_EVERY_MS = 2000;

// Parts marked data-live are replaced by the same parts of a fresh copy of
// the page, until a part says data-done (a run that has ended).
function followPage() {
  const parts = () => Array.from(document.querySelectorAll("[data-live][id]"));
  if (parts().length === 0) return;
  const tick = async () => {
    if (parts().every((p) => p.hasAttribute("data-done"))) return;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const part of parts()) {
          const next = fresh.getElementById(part.id);
          if (!next) continue;
          part.innerHTML = next.innerHTML;
          if (next.hasAttribute("data-done")) part.setAttribute("data-done", "");
        }
      }
    } catch (e) {
      // The UI went away for a moment; try again on the next tick.
    }
    setTimeout(tick, LIVE_EVERY_MS);
  };
  setTimeout(tick, LIVE_EVERY_MS);
}

const LEVELS = ["trace", "debug", "info", "warn", "error"];

function levelOf(line) {
  for (const level of LEVELS) if (line.classList.contains("level-" + level)) return level;
  return "info";
}

function applyLevel(logs, min) {
  const floor = LEVELS.indexOf(min);
  for (const line of logs.children) line.hidden = LEVELS.indexOf(levelOf(line)) < floor;
}

function lineElement(line) {
  const div = document.createElement("div");
  div.className = "line level-" + line.level;
  const add = (cls, text) => {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text; // text, never markup
    div.appendChild(span);
    div.appendChild(document.createTextNode(" "));
  };
  add("time", line.time);
  add("level", line.level.toUpperCase());
  if (line.task_name) add("task", line.task_name);
  let message = line.message;
  for (const [key, value] of line.fields || []) message += " " + key + "=" + value;
  add("message", message);
  return div;
}

// A run's logs: the lines the page came with, then new ones as they are
// written, until the run ends.
function followLogs() {
  const logs = document.getElementById("logs");
  const level = document.getElementById("level");
  if (!logs) return;
  if (level) level.addEventListener("change", () => applyLevel(logs, level.value));
  if (logs.hasAttribute("data-done")) return;
  const url = new URL(logs.dataset.stream, location.href);
  if (logs.dataset.after) url.searchParams.set("after", logs.dataset.after);
  const events = new EventSource(url);
  events.addEventListener("lines", (event) => {
    const batch = JSON.parse(event.data);
    const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
    for (const line of batch.lines) logs.appendChild(lineElement(line));
    if (batch.next) logs.dataset.after = batch.next;
    if (level) applyLevel(logs, level.value);
    if (atBottom) logs.scrollTop = logs.scrollHeight;
  });
  events.addEventListener("end", () => {
    events.close();
    logs.setAttribute("data-done", "");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  followPage();
  followLogs();
});
