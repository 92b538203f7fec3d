// Threadgate's status page: polls /status, /healthz and /recent and redraws in place.
// Every text from the gateway goes into the DOM with textContent, never as HTML.
"use strict";
(() => {
  let pollMs = 2000;
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // A class name made from a value of the data: only letters, digits and dashes.
  const token = (value) => String(value).toLowerCase().replace(/[^a-z0-9-]/g, "");

  function seconds(value) {
    if (value === null || value === undefined || value === "" || value === "-") return "-";
    const number = Number(value);
    return Number.isFinite(number) && typeof value === "number" ? number.toFixed(1) + "s" : String(value);
  }

  function cell(row, label, value, className) {
    const td = el("td", className, value === undefined || value === null ? "-" : value);
    td.setAttribute("data-label", label);
    row.appendChild(td);
  }

  function renderThreads(threads) {
    const rows = threads.map((t) => {
      const row = el("tr");
      row.setAttribute("data-key", String(t.key));
      cell(row, "thread", t.key, "key");
      cell(row, "state", t.state, "state-" + token(t.state));
      cell(row, "phase", t.phase);
      cell(row, "queued", t.queued, "num");
      cell(row, "mailbox", t.mailbox, "num");
      cell(row, "run age", seconds(t.run_age), "num");
      cell(row, "last progress", seconds(t.last_progress_age), "num");
      cell(row, "restarts", t.restarts, "num");
      return row;
    });
    $("threads").tBodies[0].replaceChildren(...rows);
    $("no-threads").hidden = rows.length > 0;
    $("thread-count").textContent = "(" + rows.length + ")";
  }

  function renderPools(pools) {
    const rows = [];
    for (const pool of pools) {
      for (const key of pool.keys) {
        const row = el("tr");
        cell(row, "pool", pool.name);
        cell(row, "key", key.label, "key");
        cell(row, "state", key.state, "state-" + token(key.state));
        cell(row, "cooldown left", key.cooldown_left ? seconds(key.cooldown_left) : "-", "num");
        cell(row, "requests", key.requests, "num");
        cell(row, "failures", key.failures, "num");
        cell(row, "reason", key.reason || "-");
        rows.push(row);
      }
    }
    $("pools").tBodies[0].replaceChildren(...rows);
  }

  // Shard numbers as short ranges: "0-3, 7, 9-10".
  function ranges(shards) {
    const parts = [];
    let start = null, last = null;
    for (const shard of [...shards].sort((a, b) => a - b)) {
      if (start !== null && shard === last + 1) { last = shard; continue; }
      if (start !== null) parts.push(start === last ? String(start) : start + "-" + last);
      start = last = shard;
    }
    if (start !== null) parts.push(start === last ? String(start) : start + "-" + last);
    return parts.join(", ") || "-";
  }

  // Several replicas (PostgreSQL): who holds which shards; hidden on a single process.
  function renderCluster(cluster) {
    $("cluster").hidden = !cluster;
    if (!cluster) return;
    const rows = cluster.replicas.map((r) => {
      const row = el("tr");
      cell(row, "replica", r.id + (r.this ? " (this)" : ""), "key");
      cell(row, "state", r.alive ? "alive" : "gone", r.alive ? "" : "state-failed");
      cell(row, "shards", r.shards_held, "num");
      cell(row, "threads", r.threads_live, "num");
      cell(row, "poller", r.leads_poller ? "yes" : "-");
      cell(row, "heartbeat", seconds(r.heartbeat_age), "num");
      cell(row, "shard list", ranges(r.shards));
      return row;
    });
    $("replicas").tBodies[0].replaceChildren(...rows);
    $("replica-count").textContent = "(" + cluster.replicas_live + " live; " +
      cluster.shards_unowned + " of " + cluster.shards_total + " shards unowned)";
  }

  function renderEvents(listId, emptyId, entries) {
    const items = entries.map((entry) => {
      const item = el("li", "kind-" + token(entry.kind));
      const at = new Date(entry.at * 1000);
      const time = el("time", "", at.toLocaleTimeString());
      time.setAttribute("datetime", at.toISOString());
      item.append(time, el("span", "kind", entry.kind));
      if (entry.thread) item.append(el("span", "thread", entry.thread));
      item.append(el("span", "text", entry.text));
      return item;
    });
    $(listId).replaceChildren(...items);
    $(emptyId).hidden = items.length > 0;
  }

  function renderHealth(health) {
    const badge = $("health");
    badge.textContent = health.status;
    badge.className = "badge " + token(health.status);
    const notes = Object.entries(health.services || {})
      .filter(([, service]) => service.state !== "running")
      .map(([name, service]) => name + ": " + service.state +
        (service.last_error ? " (" + service.last_error + ")" : ""));
    const failed = Object.entries(health)
      .filter(([, value]) => value === false)
      .map(([name]) => name);
    $("services").textContent = [...failed.map((n) => "failing: " + n), ...notes].join(" · ");
  }

  function renderStatistics(statistics) {
    $("statistics").textContent = Object.entries(statistics || {})
      .map(([name, value]) => name.replace(/_/g, " ") + " " + value).join(" · ");
  }

  async function getJson(path) {
    const response = await fetch(path, { cache: "no-store", credentials: "same-origin" });
    if (response.status === 401) {
      window.location.reload();  // the login form
      throw new Error("unauthorized");
    }
    return response.json();  // /healthz answers 503 with a body when unhealthy
  }

  async function tick() {
    try {
      const [status, health, recent] = await Promise.all(
        ["/status", "/healthz", "/recent"].map(getJson));
      renderCluster(status.cluster || null);
      renderThreads(status.threads || []);
      renderPools(status.pools || []);
      renderStatistics(status.statistics);
      renderHealth(health);
      renderEvents("outcomes", "no-outcomes", recent.outcomes || []);
      renderEvents("errors", "no-errors", recent.errors || []);
      if (recent.poll_seconds) pollMs = recent.poll_seconds * 1000;
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    } catch (error) {
      const badge = $("health");
      badge.textContent = "no answer";
      badge.className = "badge offline";
      $("updated").textContent = "the gateway did not answer; retrying";
    } finally {
      window.setTimeout(tick, pollMs);
    }
  }

  tick();
})();
