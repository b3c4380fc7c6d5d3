// The VeriSim web console: vanilla JS, no build step. Every data call goes to a guarded /admin
// route of this node with the admin token the operator typed, kept in sessionStorage.
"use strict";

const TOKEN_KEY = "verisim.admin_token";
const REFRESH_MS = 2000;
const MAX_EVENTS = 100;

const $ = (id) => document.getElementById(id);
let timer = null;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// An element with text (never HTML) and attributes.
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  return e;
}

function num(v) {
  return v === undefined || v === null ? "-" : String(v);
}

// A call to this node's admin API: the parsed body, or an Error with .status and .code.
async function admin(method, path) {
  const resp = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + token() },
    cache: "no-store",
    credentials: "omit",
  });
  let body = null;
  try {
    body = await resp.json();
  } catch (_) {
    body = null;
  }
  if (!resp.ok) {
    const err = new Error((body && body.message) || resp.statusText || "request failed");
    err.status = resp.status;
    err.code = body && body.code;
    throw err;
  }
  return body;
}

function showSignIn(message) {
  if (timer !== null) {
    clearTimeout(timer);
    timer = null;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  for (const id of ["members", "events"]) $(id).tBodies[0].replaceChildren();
  $("trees").replaceChildren();
  $("console").hidden = true;
  $("signout").hidden = true;
  $("signin-panel").hidden = false;
  $("where").textContent = "";
  $("refreshed").textContent = "";
  const err = $("signin-error");
  err.textContent = message || "";
  err.hidden = !message;
}

function showConsole() {
  $("signin-panel").hidden = true;
  $("signin-error").hidden = true;
  $("console").hidden = false;
  $("signout").hidden = false;
}

// ---- rendering ------------------------------------------------------------------------------

function renderMembers(ov) {
  const nodes = ov.nodes || [];
  const top = Math.max(
    0,
    ...nodes.map((n) => (n.status && n.status.consensus ? n.status.consensus.commit_index : 0)),
  );
  const rows = nodes.map((n) => {
    const tr = el("tr", null, { "data-node": n.name });
    tr.append(el("td", n.name + (n.http_addr ? " (" + n.http_addr + ")" : "")));
    if (n.error) {
      const td = el("td", "unreachable: " + n.error, { class: "unreachable", colspan: "12" });
      tr.append(td);
      return tr;
    }
    const c = n.status.consensus;
    const drift = n.drift || {};
    let driftText = "no pass yet";
    if (drift.error) driftText = "error: " + drift.error;
    else if (drift.last_error) driftText = "last pass failed: " + drift.last_error;
    else if (drift.last) {
      const l = drift.last;
      driftText = (l.drifted === 0 ? "in sync" : "drifted " + l.drifted + ", repaired " +
        l.repaired + ", unrepaired " + l.unrepaired) + " (" + num(l.items_checked) + " items checked)";
    }
    const cells = [
      String(c.role).toLowerCase(),
      c.term,
      num(c.leader),
      c.commit_index,
      c.applied_index,
      top - c.applied_index,
      c.log.entries,
      c.log.bytes,
      c.snapshot_index,
      num(n.status.last_snapshot_bytes),
      (n.status.peers_up || []).length,
    ];
    cells.forEach((v, i) => {
      const td = el("td", num(v), { class: i === 0 ? "" : "num" });
      if (i === 5) td.classList.add("lag");
      tr.append(td);
    });
    tr.append(el("td", driftText, { class: "drift" }));
    return tr;
  });
  $("members").tBodies[0].replaceChildren(...rows);
}

// One row per child, depth first, with its path in the tree.
function treeRows(node, tree, prefix, depth, out) {
  for (const ch of tree.children || []) {
    const path = prefix ? prefix + "/" + ch.id : ch.id;
    const tr = el("tr", null, { "data-node": node, "data-path": path, "data-state": ch.state });
    tr.append(el("td", ch.id + (ch.kind === "supervisor" ? "/" : ""), {
      class: "indent-" + Math.min(depth, 3),
      title: path,
    }));
    tr.append(el("td", ch.state, { class: "state state-" + ch.state }));
    tr.append(el("td", ch.restart_count, { class: "num restarts" }));
    tr.append(el("td", ch.last_failure || "", { class: "failure" }));
    const actions = el("td");
    const restart = el("button", "Restart", {
      type: "button",
      "data-action": "restart",
      "data-node": node,
      "data-path": path,
    });
    const terminate = el("button", "Terminate", {
      type: "button",
      class: "danger",
      "data-action": "terminate",
      "data-node": node,
      "data-path": path,
    });
    actions.append(restart, " ", terminate);
    tr.append(actions);
    out.push(tr);
    if (ch.subtree) treeRows(node, ch.subtree, path, depth + 1, out);
  }
}

function renderTrees(ov) {
  const boxes = (ov.nodes || []).map((n) => {
    const box = el("div", null, { class: "node-tree", "data-node": n.name });
    const tree = n.tree;
    if (n.error || !tree || tree.error) {
      box.append(el("h3", n.name));
      box.append(el("p", "unreachable: " + (n.error || (tree && tree.error) || "no tree"), {
        class: "unreachable",
      }));
      return box;
    }
    box.append(el("h3", n.name + " - " + tree.name + " (" + tree.strategy + ", " +
      tree.intensity + " restarts in " + tree.period_ms / 1000 + " s)"));
    const table = el("table", null, { class: "tree" });
    const head = el("tr");
    for (const h of ["Child", "State", "Restarts", "Last failure", ""]) head.append(el("th", h));
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    const rows = [];
    treeRows(n.name, tree, "", 0, rows);
    table.tBodies[0].append(...rows);
    box.append(table);
    return box;
  });
  $("trees").replaceChildren(...boxes);
}

function eventDetails(e) {
  switch (e.event) {
    case "child_failed":
      return e.reason || "";
    case "child_restarted":
      return "restart " + e.restart_count + (e.operator ? " (operator)" : "");
    case "restart_failed":
      return e.reason;
    case "gave_up":
      return "more than " + e.intensity + " restarts in " + e.period_ms / 1000 + " s: escalated";
    case "auto_shutdown":
      return "significant children ended";
    default:
      return "";
  }
}

function renderEvents(ov) {
  const all = [];
  for (const n of ov.nodes || []) {
    if (n.events && Array.isArray(n.events.events)) all.push(...n.events.events);
  }
  all.sort((a, b) => b.at_ms - a.at_ms || b.seq - a.seq);
  const rows = all.slice(0, MAX_EVENTS).map((e) => {
    const tr = el("tr", null, {
      class: "ev-" + e.event,
      "data-node": e.node,
      "data-path": e.path,
      "data-event": e.event,
    });
    tr.append(
      el("td", new Date(e.at_ms).toISOString().replace("T", " ").replace("Z", "")),
      el("td", e.node),
      el("td", e.path || "(root)"),
      el("td", e.event.replace(/_/g, " ")),
      el("td", eventDetails(e)),
    );
    return tr;
  });
  if (rows.length === 0) {
    rows.push(el("tr", null, {}));
    rows[0].append(el("td", "no events yet", { colspan: "5" }));
  }
  $("events").tBodies[0].replaceChildren(...rows);
}

// ---- refresh loop ---------------------------------------------------------------------------

async function refresh() {
  timer = null;
  if (!token()) return;
  try {
    const ov = await admin("GET", "/admin/overview");
    if (!token()) return; // signed out while the request was on its way
    showConsole();
    $("where").textContent = "node n" + ov.node + ", leader " + (ov.leader === null ? "unknown" : "n" + ov.leader);
    renderMembers(ov);
    renderTrees(ov);
    renderEvents(ov);
    $("load-error").hidden = true;
    $("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.setAttribute("data-loaded", "true");
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      showSignIn(err.status === 403 ? "Wrong admin token." : "This node wants an admin token.");
      return;
    }
    $("load-error").textContent = "Could not load: " + err.message;
    $("load-error").hidden = false;
  }
  if (token() && timer === null) timer = setTimeout(refresh, REFRESH_MS);
}

async function act(button) {
  const { action, node, path } = button.dataset;
  const verb = action === "restart" ? "Restart" : "Terminate";
  if (!window.confirm(verb + " " + path + " on " + node + "?")) return;
  const status = $("action-status");
  status.className = "";
  status.textContent = verb + " " + path + " on " + node + "...";
  const url = "/admin/nodes/" + encodeURIComponent(node) + "/" + action + "/" +
    path.split("/").map(encodeURIComponent).join("/");
  try {
    await admin("POST", url);
    status.textContent = verb + " " + path + " on " + node + ": done.";
  } catch (err) {
    if (err.status === 401 || err.status === 403) return showSignIn("Wrong admin token.");
    status.className = "error";
    status.textContent = verb + " " + path + " on " + node + " failed: " + err.message;
  }
  if (timer !== null) clearTimeout(timer);
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    $("token").value = "";
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $("signin-error").hidden = true;
    refresh();
  });
  $("signout").addEventListener("click", () => showSignIn(""));
  $("trees").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (b) act(b);
  });
  if (token()) refresh();
  else showSignIn("");
});
