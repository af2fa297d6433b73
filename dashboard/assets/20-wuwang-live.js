/* 五网同构 console — the live picture.
 *
 * The browser holds one WebSocket to the command service's /ws (W.Socket). The first
 * message is a snapshot (open incidents, and whatever else the service registers);
 * then one JSON change per message: {type, id, version, exercise_id, team_id, data}.
 * Changes are applied to the state here and, at most every `flush_ms`, only the parts
 * that changed are handed to Dash with set_props: the incident and team layers, the
 * queue, the teams summary, and small "tick" stores that tell server callbacks (the
 * open incident, the KPI tiles, the reserve board) to fetch again. Nothing is polled.
 *
 * A lost connection shows the stale banner at once; the socket reconnects by itself
 * and the new snapshot replaces the whole state (so a missed change cannot linger).
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var ROMAN = { 1: "I", 2: "II", 3: "III", 4: "IV" };
  var KPI_DEBOUNCE_MS = 2000;
  var INBOX_DEBOUNCE_MS = 500;
  var HEAT_MIN_MS = 60000;
  var AGE_REDRAW_MS = 30000;

  var live = (W.live = W.live || {});
  live.incidents = new Map();
  live.teams = new Map();
  live.stats = { received: 0, snapshots: 0, flushes: 0, lastFlushAt: 0 };
  live.selected = null;
  live.known = false;  // a snapshot has been applied: changes from now on may be news
  live.cfg = null;
  live.socket = null;
  live.status = { connected: false, stale: true, expired: false, since: null };
  live.onChange = null;  // a hook for benchmarks: called with every change after it is applied
  /* Exercise mode (演练): which incidents the picture shows. null: live only (exercise_id
   * null); "*": every exercise (a planner who has not chosen one); an id: that exercise
   * only. Set by the server (the exercise-scope store, callbacks/exercise.py) after it
   * checked the user may watch it; the command service never sends an operator an
   * exercise change in the first place — this only keeps exercises and live apart on a
   * screen that may receive both (admins). */
  live.scope = null;
  function inScope(exerciseId) {
    var id = exerciseId || null;
    if (live.scope === "*") return id !== null;
    return id === (live.scope || null);
  }
  live.inScope = inScope;
  live.onFlush = null;
  var dirty = { incidents: false, teams: false, teamStatus: false };
  var flushTimer = null, kpiTimer = null, lastHeat = 0, ticks = { detail: 0, kpi: 0, reserve: 0, heat: 0, exercise: 0, warning: 0, registry: 0 };
  /* Risk sources and shelters (callbacks/map.py draws both layers): a shelter's new count
   * or status redraws them, a burst of counts from many teams once per REGISTRY_DEBOUNCE_MS. */
  var REGISTRY_DEBOUNCE_MS = 1500, registryTimer = null;
  function bumpRegistry() {
    if (registryTimer) return;
    registryTimer = setTimeout(function () { registryTimer = null; tick("registry", "registry-tick"); }, REGISTRY_DEBOUNCE_MS);
  }

  function tick(name, storeId) {
    // The detail's callbacks write into #detail: a page without it (the wall) is not told.
    if (name === "detail" && !document.getElementById("detail")) return;
    ticks[name] += 1;
    W.setProps(storeId, { data: ticks[name] });
  }
  /* The alarm inbox (callbacks/inbox.py) draws its rows on the server: tell it, at most
   * every INBOX_DEBOUNCE_MS, that rows changed (a storm of alerts folds into one row,
   * and into one refresh). Only the desk has the panel. */
  var inboxTimer = null;
  function bumpInbox() {
    if (!live.cfg || live.cfg.page !== "desk" || inboxTimer) return;
    // a time, not a counter: the server's acts bump the same store
    inboxTimer = setTimeout(function () { inboxTimer = null; W.setProps("inbox-tick", { data: Date.now() }); }, INBOX_DEBOUNCE_MS);
  }
  live.bumpInbox = bumpInbox;
  function bumpKpi() {
    if (kpiTimer) return;
    kpiTimer = setTimeout(function () { kpiTimer = null; tick("kpi", "kpi-tick"); }, KPI_DEBOUNCE_MS);
  }

  live.attach = function (cfg, token, catalogue) {
    W.catalogue = catalogue || W.catalogue;
    var same = live.socket && !live.socket.stopped && live.token === token && live.cfg && live.cfg.ws_url === cfg.ws_url;
    live.cfg = cfg;
    if (same) {  // the page was drawn again (language switch): push the whole state to it
      dirty.incidents = dirty.teams = dirty.teamStatus = true;
      schedule(true);
      pushStatus();
      restoreKept();
      // the server-drawn parts start empty in the new language: ask for them again
      tick("kpi", "kpi-tick");
      tick("reserve", "reserve-tick");
      tick("warning", "warning-tick");
      return live.status;
    }
    live.stop();
    live.token = token;
    live.status = { connected: false, stale: true, expired: false, since: null };
    live.socket = new W.Socket(cfg.ws_url, token, {
      open: function () { /* the snapshot marks us fresh */ },
      message: handle,
      close: function (ev, retry) {
        // 1013: the command service is up but cannot stream (Redis down) — say so
        live.status = { connected: false, stale: true, expired: false, since: Date.now(), code: ev.code,
                        unavailable: ev.code === 1013 };
        pushStatus();
      },
      expired: function () {
        live.status = { connected: false, stale: true, expired: true, since: Date.now() };
        pushStatus();
      }
    });
    return live.status;
  };

  live.stop = function () {
    if (live.socket) live.socket.stop();
    live.socket = null;
    live.incidents = new Map();
    live.teams = new Map();
    live.selected = null;
    live.known = false;  // the next snapshot is a new picture, not news
  };

  /* What a language switch keeps: the open incident and the map's view (the page is
   * drawn again from the server, its stores and map start afresh). */
  live.kept = null;
  live.keep = function () {
    var map = W.getProps("map");
    live.kept = {
      selected: live.selected,
      view: map && map.center && map.zoom !== undefined ? { center: map.center, zoom: map.zoom } : null
    };
  };
  function restoreKept() {
    var kept = live.kept;
    live.kept = null;
    if (!kept) return;
    if (kept.view) W.setProps("map", { viewport: { center: kept.view.center, zoom: kept.view.zoom, transition: "setView" } });
    if (kept.selected && kept.view && W.focus) W.focus.hold(kept.selected);
    if (kept.selected) live.select(kept.selected);  // a closed one too: the detail asks the API
  }

  function pushStatus() {
    W.setProps("live-status", { data: Object.assign({}, live.status) });
  }

  /* Draw the map's live layers again (the wall's screen was resized: marker sizes). */
  live.redraw = function () { dirty.incidents = dirty.teams = true; schedule(true); };

  live.select = function (id) {
    live.selected = id;
    if (W.announce) W.announce.ack(id);  // opening a flashing row acknowledges it
    openDetail(0);
    dirty.incidents = true;
    schedule(true);
  };
  /* Only the desk has a detail to open: the wall highlights the incident and no more (its
   * callbacks would write into a detail that is not on the page). The desk's side panel
   * comes after its map (layout/console.py, deferred): an incident chosen before it did —
   * a row clicked, the one kept across a language switch — is opened once it is there. */
  var detailWait = null;
  function openDetail(tries) {
    clearTimeout(detailWait);
    if (!live.selected) return;
    if (document.getElementById("detail")) {
      W.setProps("selected-incident", { data: live.selected });
      W.setProps("side-tabs", { value: "detail" });
    } else if (live.cfg && live.cfg.page === "desk" && tries < 240) {  // a minute at most
      detailWait = setTimeout(function () { openDetail(tries + 1); }, 250);
    }
  }

  /* Teams read over HTTP when the snapshot carried none (or to fill names in). */
  live.seedTeams = function (rows) {
    (rows || []).forEach(function (t) {
      var id = t.id || t.team_id;
      if (!id) return;
      var prev = live.teams.get(id);
      live.teams.set(id, Object.assign({}, normaliseTeam(t, null), prev || {}));
    });
    dirty.teams = dirty.teamStatus = true;
    schedule(true);
  };

  /* A team as the map needs it, from a roster row (GET /teams, the snapshot) or a
   * change (a status change carries the summary, a position change only the fix).
   * Without a fix the team is drawn at its base until one arrives. */
  function normaliseTeam(t, prev) {
    var out = Object.assign({}, t);
    out.id = t.id || t.team_id;
    var pos = t.position || t.last_position;
    if (pos && pos.lat !== undefined && pos.lat !== null) {
      out.lat = pos.lat; out.lon = pos.lon; out.at_base = false;
    } else if (t.lat === undefined || t.lat === null) {
      if (prev && prev.lat !== undefined && prev.lat !== null) {
        out.lat = prev.lat; out.lon = prev.lon; out.at_base = prev.at_base;
      } else {
        var base = t.base || (t.base_lat !== undefined ? { lat: t.base_lat, lon: t.base_lon } : null);
        if (base) { out.lat = base.lat; out.lon = base.lon; out.at_base = true; }
      }
    }
    out.type = t.type || t.team_type || (prev ? prev.type : undefined);
    if (t.active_order !== undefined) out.incident_id = t.active_order ? t.active_order.incident_id : null;
    return out;
  }

  function handle(msg) {
    live.stats.received += 1;
    if (msg.type === "snapshot") {
      live.stats.snapshots += 1;
      applySnapshot(msg);
    } else if (msg.type === "incident") {
      applyIncident(msg.data || {}, msg.version);
    } else if (msg.type === "team") {
      if (!msg.exercise_id || inScope(msg.exercise_id)) applyTeam(msg.id, msg.data || {});
    } else if (msg.type === "exercise") {
      if ((msg.data || {}).status === "purged") {  // its incidents are gone: drop them here too
        live.incidents.forEach(function (inc, id) { if (inc.exercise_id === msg.exercise_id) live.incidents.delete(id); });
        dirty.incidents = true;
      }
      if (inScope(msg.exercise_id) || live.scope === msg.exercise_id) tick("exercise", "exercise-tick");
    } else if (msg.type === "alarm") {
      if ((msg.data || {}).kind === "call" && Date.now() - lastHeat > HEAT_MIN_MS) {
        lastHeat = Date.now();
        setTimeout(function () { tick("heat", "heat-tick"); }, HEAT_MIN_MS);  // after the aggregate refresh
      }
    } else if (msg.type === "stock") {
      tick("reserve", "reserve-tick");
      bumpKpi();
    } else if (msg.type === "warning") {
      // 预警: the layer, the banner and the desk's list are drawn on the server (callbacks/warnings.py)
      if (!msg.exercise_id || inScope(msg.exercise_id)) tick("warning", "warning-tick");
    } else if (msg.type === "shelter" || msg.type === "risk_source") {
      bumpRegistry();
    } else if (msg.type === "inbox") {
      // the alarm inbox panel (desk only) fetches its rows again; a storm is one refresh
      if (!msg.exercise_id || inScope(msg.exercise_id)) bumpInbox();
    } else if (msg.type === "alert") {
      var al = msg.data || {};
      // the ack watchdog: an order not acknowledged in time flashes its incident's row
      if (al.kind === "ack_overdue" && al.incident_id && inScope(msg.exercise_id)) announce(al.incident_id, "overdue");
    } else if (msg.type === "order") {
      var d = msg.data || {};
      if (d.incident_id && d.incident_id === live.selected) tick("detail", "detail-tick");
    }
    if (live.onChange) live.onChange(msg);
    if (W.wall) W.wall.change(msg);  // the wall display's unit board (assets/50-wuwang-wall.js)
    schedule(msg.type === "snapshot" || msg.type === "incident");
  }

  function announce(id, reason) {
    if (W.announce && reason) W.announce.note(id, reason);
  }

  function applySnapshot(msg) {
    var before = live.incidents, known = live.known;
    live.incidents = new Map();
    (msg.incidents || []).forEach(function (inc) { if (inc && inc.id && inc.is_open !== false) live.incidents.set(inc.id, inc); });
    // A first snapshot is the picture, not news; after a reconnect, what came meanwhile is.
    live.incidents.forEach(function (inc, id) {
      if (inScope(inc.exercise_id)) announce(id, W.queueRank.news(before.get(id), inc, known));
    });
    if (W.announce) W.announce.forget(live.incidents);
    live.known = true;
    if (Array.isArray(msg.teams)) {
      var old = live.teams;
      live.teams = new Map();
      msg.teams.forEach(function (t) {
        var n = normaliseTeam(t, old.get(t.id || t.team_id));
        if (n.id) live.teams.set(n.id, Object.assign({}, old.get(n.id) || {}, n));
      });
    }
    live.status = { connected: true, stale: false, expired: false, since: Date.now() };
    pushStatus();
    dirty.incidents = dirty.teams = dirty.teamStatus = true;
    tick("kpi", "kpi-tick");
    tick("reserve", "reserve-tick");
    tick("warning", "warning-tick");  // what changed while away
    bumpInbox();  // (re)connected: the inbox may have changed while away
    if (live.selected) tick("detail", "detail-tick");
  }

  function applyIncident(body, version) {
    var id = body.id;
    if (!id) return;
    var prev = live.incidents.get(id);
    var v = version || body.version || 0;
    if (prev && (prev.version || 0) > v) return;  // an older change arriving late
    if (body.is_open === false) live.incidents.delete(id);
    else live.incidents.set(id, body);
    dirty.incidents = true;
    if (inScope(body.exercise_id)) announce(id, W.queueRank.news(prev, body, live.known));
    if (body.is_open === false && W.announce) W.announce.ack(id);
    // Only the open incident's detail is fetched again (nothing open: a change with no
    // merged_into, null, must not match a null selection and refetch an empty detail).
    if (live.selected && (id === live.selected || body.merged_into === live.selected)) tick("detail", "detail-tick");
    if (!inScope(body.exercise_id)) return;
    if (!prev || !body.is_open || prev.state !== body.state || prev.level !== body.level) bumpKpi();
  }

  /* The exercise-scope store changed: draw the picture again for the new scope and fetch
   * the KPI tiles for it. */
  live.setScope = function (scope) {
    var next = null;
    if (scope && scope.mode === "all") next = "*";
    else if (scope && scope.mode === "one" && scope.id) next = String(scope.id);
    if (next === live.scope) return live.scope;
    live.scope = next;
    if (live.selected) {
      var sel = live.incidents.get(live.selected);
      if (sel && !inScope(sel.exercise_id)) live.selected = null;
    }
    dirty.incidents = true;
    schedule(true);
    tick("kpi", "kpi-tick");
    return live.scope;
  };

  function applyTeam(id, data) {
    id = id || data.team_id || data.id;
    if (!id) return;
    var prev = live.teams.get(id) || { id: id };
    var next = Object.assign({}, prev, normaliseTeam(Object.assign({ id: id }, data), prev));
    live.teams.set(id, next);
    dirty.teams = true;
    if (prev.status !== next.status) { dirty.teamStatus = true; bumpKpi(); }
  }

  /* When to hand the changes to Dash. An incident (or a snapshot) goes out at once —
   * at most one update per URGENT_MS, so a burst is still one redraw; team positions,
   * which may come a thousand a second, are batched every `flush_ms`. */
  var URGENT_MS = 40, flushDue = 0;
  function schedule(urgent) {
    if (!dirty.incidents && !dirty.teams && !dirty.teamStatus) return;
    var now = Date.now();
    var wait = urgent ? Math.max(0, URGENT_MS - (now - live.stats.lastFlushAt))
                      : (live.cfg ? live.cfg.flush_ms : 250);
    if (flushTimer !== null) {
      if (now + wait >= flushDue) return;  // an earlier flush is already due
      clearTimeout(flushTimer);
    }
    flushDue = now + wait;
    flushTimer = setTimeout(flush, wait);
  }

  function ageMinutes(inc, now) {
    var t = W.parseTime(inc.first_alarm_at) || W.parseTime(inc.opened_at) || now;
    return Math.max(0, (now - t) / 60000);
  }

  function incidentFeatures() {
    var now = Date.now(), datum = live.cfg ? live.cfg.datum : "wgs84", out = [];
    live.incidents.forEach(function (inc) {
      if (inc.lat === null || inc.lat === undefined || !inScope(inc.exercise_id)) return;
      out.push({
        type: "Feature",
        geometry: { type: "Point", coordinates: W.position(inc.lat, inc.lon, datum) },
        properties: { i: inc.id, l: inc.level, s: inc.state, t: W.incidentTitle(inc), a: Math.floor(ageMinutes(inc, now)),
                      sel: inc.id === live.selected }
      });
    });
    // gravest last, so it is drawn on top
    out.sort(function (a, b) { return b.properties.l - a.properties.l; });
    return { type: "FeatureCollection", features: out };
  }

  function teamFeatures() {
    var datum = live.cfg ? live.cfg.datum : "wgs84", out = [];
    live.teams.forEach(function (t) {
      if (t.lat === null || t.lat === undefined) return;
      out.push({
        type: "Feature",
        geometry: { type: "Point", coordinates: W.position(t.lat, t.lon, datum) },
        properties: { i: t.id, s: t.status || "available", n: t.name, y: t.type }
      });
    });
    return { type: "FeatureCollection", features: out };
  }

  /* The queue as the operator works it: sections, most urgent first in each
   * (assets/15-wuwang-queue.js ranks them). */
  function queueRows() {
    var list = [], byLevel = { 1: 0, 2: 0, 3: 0, 4: 0 };
    live.incidents.forEach(function (inc) {
      if (!inScope(inc.exercise_id)) return;
      list.push(inc);
      byLevel[inc.level] = (byLevel[inc.level] || 0) + 1;
    });
    var cfg = live.cfg || {};
    var ranked = W.queueRank.rank(list, Date.now(), cfg);
    if (cfg.page !== "desk") {  // the wall: one list, gravest first, that pages by itself
      ranked = { total: ranked.total, sections: [{ id: "all", count: ranked.total, rows: W.queueRank.flat(ranked) }] };
    }
    var limit = cfg.queue_limit || 200, shown = 0;
    var sections = ranked.sections.map(function (sec) {
      var rows = sec.rows.slice(0, Math.max(0, limit - shown)).map(function (r) {
        var inc = live.incidents.get(r.id);
        var kinds = [];
        (inc.sources || []).forEach(function (src) { if (src.kind && kinds.indexOf(src.kind) < 0) kinds.push(src.kind); });
        var parts = W.queueRank.titleParts(inc.title, inc.type, cfg.type_zh);
        return {
          id: r.id, level: r.level, title: inc.title, state: r.state, type: inc.type, section: r.section,
          what: parts.type, where: parts.where,
          late: r.left_s !== null && r.left_s < 0,
          first_alarm: r.first_alarm,
          first_dispatch: W.parseTime(inc.first_dispatch_at),
          kinds: kinds, sources: (inc.sources || []).length,
          exercise: inc.exercise_id || null,
          held: inc.held ? inc.held.reason : null,
          announce: W.announce ? W.announce.reasonOf(r.id) : null
        };
      });
      shown += rows.length;
      return { id: sec.id, count: sec.count, rows: rows };
    });
    return { total: ranked.total, shown: shown, sections: sections, selected: live.selected, by_level: byLevel };
  }

  /* The queue, drawn straight into its element (a few hundred rows redrawn in a few
   * milliseconds; through Dash components it took a hundred times longer). Text goes
   * in as text, never as HTML. */
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function sectionName(id) {
    if (id === "awaiting") return W.t("queue.section_awaiting");
    if (id === "active") return W.t("queue.section_active");
    return W.t("queue.section_held");
  }
  function announceText(reason) {
    if (reason === "raised") return W.t("queue.announce_raised");
    if (reason === "overdue") return W.t("queue.announce_overdue");
    return W.t("queue.announce_new");
  }
  function sourceTag(kind) {
    var tag = el("span", "src-tag src-" + kind, W.t("source." + kind));
    return tag;
  }
  function queueRow(r, selected, first) {
    var cls = "qrow level-" + r.level + " state-" + r.state + " section-" + r.section;
    if (r.id === selected) cls += " selected";
    if (r.late) cls += " late";
    if (r.held) cls += " held";
    if (r.announce) cls += " announce announce-" + r.announce;
    if (first) cls += " top";
    var row = el("div", cls);
    row.setAttribute("data-incident", r.id);
    row.appendChild(el("span", "level-badge level-" + r.level, ROMAN[r.level] || "?"));
    var main = el("div", "qmain");
    // what and where (the title), the source as a tag beside it
    var line = el("div", "qtitle");
    r.kinds.forEach(function (k) { line.appendChild(sourceTag(k)); });
    // the type in the console's language, then the place as the title says it
    var text = r.what ? W.t("type." + r.what) + (r.where ? " · " + r.where : "") : r.title;
    line.appendChild(el("span", "qtext", text));
    main.appendChild(line);
    var sub = el("div", "qsub");
    if (r.announce) {
      sub.appendChild(el("span", "announce-tag", announceText(r.announce)));
      var ack = el("button", "ack", W.t("queue.ack"));
      ack.type = "button";
      ack.setAttribute("data-ack", r.id);
      sub.appendChild(ack);
    }
    var words = [W.t("state." + r.state)];
    if (r.held) words.push(W.t("queue.held_reason", { reason: r.held }));  // why, before it is cut off
    words.push(r.id);
    if (r.sources > 1) words.push(W.t("queue.sources", { n: r.sources }));
    if (r.exercise) words.push(W.t("app.exercise"));
    sub.appendChild(el("span", "qwords", words.join(" · ")));
    main.appendChild(sub);
    row.appendChild(main);
    var age = el("span", "age");
    age.setAttribute("data-since", String(r.first_alarm || ""));
    row.appendChild(age);
    var timer = el("span", "timer");
    timer.title = W.t("queue.timer_help");
    timer.setAttribute("data-since", String(r.first_alarm || ""));
    timer.setAttribute("data-until", String(r.first_dispatch || ""));
    row.appendChild(timer);
    return row;
  }
  /* The desk shows the sections with their counts; the wall pages one list (in the same
   * order) by itself. The first row — the most urgent — stays at the top while the rest
   * scroll under it. */
  function drawQueue(q) {
    var box = document.getElementById("queue");
    var count = document.getElementById("queue-count");
    if (count) count.textContent = String(q.total);
    if (!box) return;
    var desk = !!(live.cfg && live.cfg.page === "desk");
    var frag = document.createDocumentFragment();
    if (!q.total) frag.appendChild(el("div", "muted empty", W.t("queue.empty")));
    var first = true;
    q.sections.forEach(function (sec) {
      if (desk) {
        var head = el("div", "qsection section-" + sec.id);
        head.setAttribute("data-section", sec.id);
        head.appendChild(el("span", "qsection-name", sectionName(sec.id)));
        head.appendChild(el("span", "count", String(sec.count)));
        frag.appendChild(head);
      }
      sec.rows.forEach(function (r) {
        frag.appendChild(queueRow(r, q.selected, desk && first));
        first = false;
      });
    });
    if (q.total > q.shown) frag.appendChild(el("div", "muted", W.t("queue.more", { n: q.total - q.shown })));
    box.replaceChildren(frag);
    tickTimers();
    if (W.wall) W.wall.queueDrawn(box);  // the wall pages the queue (assets/50-wuwang-wall.js)
  }
  live.redrawQueue = function () {
    var page = live.cfg ? live.cfg.page : null;
    if (page === "desk" || page === "wall") drawQueue(queueRows());
  };

  function teamsSummary() {
    var counts = {}, byType = {}, active = [], total = 0;
    live.teams.forEach(function (t) {
      var s = t.status || "available";
      total += 1;
      counts[s] = (counts[s] || 0) + 1;
      var ty = t.type || "other";
      byType[ty] = byType[ty] || { available: 0, total: 0 };
      byType[ty].total += 1;
      if (s === "available") byType[ty].available += 1;
      if (s !== "available" && s !== "off_duty") active.push({ id: t.id, name: t.name, status: s, type: ty, incident: t.incident_id || null });
    });
    var order = { on_scene: 0, en_route: 1, dispatched: 2, returning: 3 };
    active.sort(function (a, b) { return (order[a.status] || 9) - (order[b.status] || 9) || (a.id < b.id ? -1 : 1); });
    return { total: total, counts: counts, by_type: byType, active: active.slice(0, 60), active_total: active.length };
  }

  /* The map layer a live feed draws (the registry, dashboard/layers.py, via the config). */
  function liveLayer(feed) {
    var layers = (live.cfg && live.cfg.live_layers) || {};
    return layers[feed] || "layer-" + feed;
  }

  function flush() {
    flushTimer = null;
    var page = live.cfg ? live.cfg.page : null;
    if (page !== "desk" && page !== "wall") return;
    if (dirty.incidents) {
      dirty.incidents = false;
      W.setProps(liveLayer("incidents"), { data: incidentFeatures() });
      var q = queueRows();
      drawQueue(q);
      W.setProps("live-queue", { data: { total: q.total, by_level: q.by_level } });
    }
    if (dirty.teams) {
      dirty.teams = false;
      W.setProps(liveLayer("teams"), { data: teamFeatures() });
    }
    if (dirty.teamStatus) {
      dirty.teamStatus = false;
      W.setProps("live-teams", { data: teamsSummary() });
      if (W.wall) W.wall.teamsChanged();
    }
    live.stats.flushes += 1;
    live.stats.lastFlushAt = Date.now();
    if (live.onFlush) live.onFlush();
  }

  /* Age rings grow while an incident waits. */
  setInterval(function () {
    if (live.incidents.size) { dirty.incidents = true; schedule(false); }
  }, AGE_REDRAW_MS);

  /* Timers in the queue: call-processing time (first alarm → first dispatch) turns red
   * past the target; age counts on. Text only, once a second, no re-render. */
  function tickTimers() {
    var now = Date.now();
    var target = (live.cfg ? live.cfg.call_target_s : 60) * 1000;
    var timers = document.querySelectorAll("[data-since]");
    for (var i = 0; i < timers.length; i++) {
      var el = timers[i];
      var since = Number(el.getAttribute("data-since"));
      if (!since) continue;
      var until = Number(el.getAttribute("data-until")) || 0;
      var span = (until || now) - since;
      el.textContent = W.duration(span / 1000);
      if (el.classList.contains("timer")) {
        el.classList.toggle("late", span > target);
        el.classList.toggle("stopped", !!until);
      }
    }
  }
  setInterval(tickTimers, 1000);

  /* "3 分钟前" in the alarm inbox (data-ago: epoch ms), kept current once a second. */
  W.ago = function (ms, now) {
    var s = Math.max(0, Math.floor(((now || Date.now()) - ms) / 1000));
    if (s < 60) return W.t("inbox.ago_now");
    if (s < 3600) return W.t("inbox.ago_min", { n: Math.floor(s / 60) });
    return W.t("inbox.ago_hour", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  };
  function tickAgo() {
    var now = Date.now(), els = document.querySelectorAll("[data-ago]");
    for (var i = 0; i < els.length; i++) {
      var ms = Number(els[i].getAttribute("data-ago"));
      if (!ms) continue;
      var text = W.ago(ms, now);
      if (els[i].textContent !== text) els[i].textContent = text;
    }
  }
  setInterval(tickAgo, 1000);

  /* A click on anything that names an incident (queue rows) opens it. */
  document.addEventListener("click", function (ev) {
    var ack = ev.target && ev.target.closest ? ev.target.closest("[data-ack]") : null;
    if (ack) {  // 知道了: acknowledged, without opening the incident
      if (W.announce) W.announce.ack(ack.getAttribute("data-ack"));
      return;
    }
    var el = ev.target && ev.target.closest ? ev.target.closest("[data-incident]") : null;
    if (el) live.select(el.getAttribute("data-incident"));
  });

  /* Back online, or the tab shown again: do not wait for the back-off. */
  window.addEventListener("online", function () { if (live.socket) live.socket.reconnectNow(); });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && live.socket) live.socket.reconnectNow();
  });

  /* ---- clientside callbacks (dashboard/callbacks/*.py registers them) ---- */
  function h(type, props) { return { type: type, namespace: "dash_html_components", props: props }; }
  function setCatalogue(cat) {
    if (cat) W.catalogue = cat;
    if (cat && W.localise) W.localise();  // the libraries' buttons in this language (60-wuwang-lang.js)
  }

  var cs = (window.dash_clientside = window.dash_clientside || {});
  cs.wuwang = Object.assign({}, cs.wuwang, {
    attachLive: function (cfg, catalogue, session) {
      setCatalogue(catalogue);
      if (!cfg || !session || !session.token) return cs.no_update;
      if (cfg.page === "field") {
        if (W.field) W.field.attach(cfg, session, catalogue);
        return cs.no_update;
      }
      return live.attach(cfg, session.token, catalogue);
    },
    renderKpiLive: function (q, teams, catalogue) {
      setCatalogue(catalogue);
      var byLevel = (q && q.by_level) || { 1: 0, 2: 0, 3: 0, 4: 0 };
      var tiles = [1, 2, 3, 4].map(function (lv) {
        return h("Div", { className: "kpi kpi-level level-" + lv, "data-kpi": "open-" + lv, children: [
          h("Div", { className: "kpi-value", children: String(byLevel[lv]) }),
          h("Div", { className: "kpi-label", children: ROMAN[lv] + " " + W.t("level." + lv) })
        ] });
      });
      var avail = teams ? (teams.counts.available || 0) : 0;
      tiles.push(h("Div", { className: "kpi", "data-kpi": "teams-available", children: [
        h("Div", { className: "kpi-value", children: teams ? avail + " / " + teams.total : "—" }),
        h("Div", { className: "kpi-label", children: W.t("kpi.teams_available") })
      ] }));
      return tiles;
    },
    renderTeamsBoard: function (s, tab, catalogue) {
      setCatalogue(catalogue);
      if (!s || tab !== "teams") return cs.no_update;  // drawn while its tab is open
      var statuses = ["available", "dispatched", "en_route", "on_scene", "returning", "off_duty"];
      var counts = h("Div", { className: "team-counts", children: statuses.map(function (st) {
        return h("Div", { className: "team-count status-" + st, children: [
          h("Span", { className: "dot status-" + st }), h("Span", { children: W.t("team_status." + st) }),
          h("Strong", { children: String(s.counts[st] || 0) })
        ] });
      }) });
      var types = Object.keys(s.by_type).sort().map(function (ty) {
        var b = s.by_type[ty];
        return h("Tr", { children: [h("Td", { children: W.t("team_type." + ty) }),
          h("Td", { className: "num", children: b.available + " / " + b.total })] });
      });
      var active = s.active.map(function (t) {
        return h("Tr", { children: [
          h("Td", { children: [h("Span", { className: "dot status-" + t.status }), t.name || t.id] }),
          h("Td", { className: "mono small", children: t.id }),
          h("Td", { children: W.t("team_status." + t.status) }),
          h("Td", { className: "mono small", children: t.incident || "" })
        ] });
      });
      return [
        h("H3", { children: W.t("teams.board_title", { n: s.total }) }), counts,
        h("Table", { className: "table", children: [h("Thead", { children: h("Tr", { children: [
          h("Th", { children: W.t("teams.type") }), h("Th", { children: W.t("teams.available") })] }) }),
          h("Tbody", { children: types })] }),
        h("H3", { children: W.t("teams.active", { n: s.active_total }) }),
        h("Table", { className: "table", children: h("Tbody", { children: active }) })
      ];
    },
    renderStatus: function (st, catalogue) {
      setCatalogue(catalogue);
      if (!st) return [cs.no_update, cs.no_update, cs.no_update];
      var text, cls;
      if (st.expired) {  // the token ran out: back to the login page, saying why
        text = W.t("live.expired"); cls = "connection bad";
        W.setProps("session-note", { data: "expired" });
        W.setProps("session", { data: null });
      }
      else if (st.connected) { text = W.t("live.connected"); cls = "connection ok"; }
      else if (st.unavailable) { text = W.t("live.unavailable"); cls = "connection bad"; }
      else { text = W.t("live.reconnecting"); cls = "connection bad"; }
      // The banner says why: the server cannot stream (1013) or the connection is lost.
      var banner = document.getElementById("stale-banner");
      if (banner && st.unavailable && !banner.hasAttribute("data-usual")) {
        banner.setAttribute("data-usual", banner.textContent);
        W.setProps("stale-banner", { children: W.t("live.unavailable_banner") });
      } else if (banner && !st.unavailable && banner.hasAttribute("data-usual")) {
        W.setProps("stale-banner", { children: banner.getAttribute("data-usual") });
        banner.removeAttribute("data-usual");
      }
      return [text, cls, !st.stale];
    },
    switchTab: function (tab) {
      var names = ["detail", "teams", "reserve", "charts"];
      return names.map(function (n) { return n === tab ? {} : { display: "none" }; });
    },
    setLang: function (value) {
      if (!value) return cs.no_update;
      live.keep();
      return value;
    },
    /* The alarm inbox promoted a row: open its new incident as a queue click would. */
    openIncident: function (id) {
      if (id) live.select(String(id));
      return id || null;
    },
    /* A renewed token (POST /auth/refresh): the open sockets send it on at once (the
       command service closes a socket whose token ran out), the field outbox sends with
       it from now on. No session (logged out, expired): the sockets stop. */
    renewToken: function (session) {
      if (!session || !session.token) {
        live.stop();
        if (W.field) W.field.stop();
        return null;
      }
      if (live.socket && live.token !== session.token) { live.token = session.token; live.socket.setToken(session.token); }
      if (W.field && W.field.session && W.field.session.token !== session.token) {
        W.field.session = Object.assign({}, W.field.session, { token: session.token, expires_at: session.expires_at });
        if (W.field.socket) W.field.socket.setToken(session.token);
      }
      return session.expires_at || null;
    }
  });
})();
