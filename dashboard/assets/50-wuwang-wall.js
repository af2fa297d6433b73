/* 五网同构 console — the wall display (大屏): lists that page by themselves, and the
 * unit status board.
 *
 * Nothing on the wall is clicked or scrolled, so a list longer than its panel rotates:
 * every `wall_page_s` the next page is shown, with "第 2/4 页" beside the list's title,
 * and every row is seen once per cycle. The most urgent rows stay pinned at the top of
 * every page: in the queue the level I and II incidents and those past the
 * call-processing target; on the unit board the overdue teams.
 *
 * The unit board lists every team from the live state (the /ws snapshot and team
 * changes, assets/20-wuwang-live.js): name, time in its status (from `status_at`) and
 * its incident, grouped by status. Overdue (marked with a word, not colour alone):
 *   - dispatched and the order not acknowledged within the command service's
 *     COMMAND_ACK_TIMEOUT_S (the ack watchdog's rule; its `ack_overdue` alert too);
 *   - en route longer than DASHBOARD_EN_ROUTE_LIMIT_S (15 min by default).
 * Only the wall draws it: the desk has its teams tab.
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var GROUPS = ["dispatched", "en_route", "on_scene", "returning", "available", "off_duty"];
  var PIN_SHARE = 0.6;  // pinned rows take at most this share of a page; the rest rotate

  function cfg() { return (W.live && W.live.cfg) || {}; }
  function onWall() { return cfg().page === "wall"; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  /* ---- paging ---------------------------------------------------------------------- */

  /* A list that pages itself: `box` holds the rows; items() says which rows there are,
   * which are pinned and which group header (if any) each belongs to. */
  function Pager(boxId, pagerId, relayout) {
    this.boxId = boxId;
    this.relayout = relayout;  // lays the list out again when its box changes height
    this.pagerId = pagerId;
    this.page = 0;
    this.pages = 1;
    this.items = [];
    this.headers = {};
  }
  Pager.prototype.box = function () { return document.getElementById(this.boxId); };
  /* Lay the rows out again (new rows, a resize): which rows go on which page. */
  Pager.prototype.layout = function (items, headers) {
    var box = this.box();
    this.items = items || [];
    this.headers = headers || {};
    if (!box) return;
    this.watch(box);
    var all = this.items.map(function (it) { return it.el; });
    Object.keys(this.headers).forEach(function (g) { all.push(this.headers[g]); }, this);
    all.forEach(function (e) { e.hidden = false; });  // measure them shown
    var room = box.clientHeight;
    var heightOf = function (e) { return e.getBoundingClientRect().height || 0; };
    var heights = this.items.map(function (it) { return heightOf(it.el); });
    var headerH = {};
    Object.keys(this.headers).forEach(function (g) { headerH[g] = heightOf(this.headers[g]); }, this);
    // Pinned rows first, as many as fit in PIN_SHARE of the page (most urgent first:
    // the rows come sorted); the others rotate with the rest.
    var pinned = [], rest = [], used = 0, shownGroups = {};
    var self = this;
    this.items.forEach(function (it, i) {
      var h = heights[i] + (it.group && !shownGroups[it.group] ? headerH[it.group] || 0 : 0);
      if (it.pinned && used + h <= room * PIN_SHARE) {
        pinned.push(i);
        used += h;
        if (it.group) shownGroups[it.group] = true;
      } else {
        rest.push(i);
      }
    });
    var pages = [], page = [], pageUsed = used, pageGroups = Object.assign({}, shownGroups);
    rest.forEach(function (i) {
      var it = self.items[i];
      var h = heights[i] + (it.group && !pageGroups[it.group] ? headerH[it.group] || 0 : 0);
      if (page.length && pageUsed + h > room) {
        pages.push(page);
        page = []; pageUsed = used; pageGroups = Object.assign({}, shownGroups);
        h = heights[i] + (it.group && !pageGroups[it.group] ? headerH[it.group] || 0 : 0);
      }
      page.push(i);
      pageUsed += h;
      if (it.group) pageGroups[it.group] = true;
    });
    if (page.length || !pages.length) pages.push(page);
    this.pinned = pinned;
    this.pageRows = pages;
    this.pages = pages.length;
    if (this.page >= this.pages) this.page = 0;
    this.show();
  };
  /* The box's height changes (a header wraps in another language, a banner comes and
   * goes): the rows per page change with it. */
  Pager.prototype.watch = function (box) {
    if (!window.ResizeObserver || this.observed === box) return;
    if (this.observer) this.observer.disconnect();
    var self = this, height = box.clientHeight;
    this.observed = box;
    this.observer = new ResizeObserver(function () {
      if (box.clientHeight === height) return;
      height = box.clientHeight;
      if (self.relayout) self.relayout();
    });
    this.observer.observe(box);
  };
  Pager.prototype.show = function () {
    var box = this.box();
    if (!box || !this.pageRows) return;
    var visible = {};
    this.pinned.forEach(function (i) { visible[i] = true; });
    (this.pageRows[this.page] || []).forEach(function (i) { visible[i] = true; });
    var groups = {};
    this.items.forEach(function (it, i) {
      it.el.hidden = !visible[i];
      it.el.classList.toggle("pinned", this.pinned.indexOf(i) >= 0);
      if (visible[i] && it.group) groups[it.group] = true;
    }, this);
    Object.keys(this.headers).forEach(function (g) { this.headers[g].hidden = !groups[g]; }, this);
    var ind = document.getElementById(this.pagerId);
    if (ind) {
      ind.textContent = W.t("wall.page", { page: this.page + 1, pages: this.pages });
      ind.setAttribute("data-page", String(this.page + 1));
      ind.setAttribute("data-pages", String(this.pages));
    }
  };
  Pager.prototype.next = function () {
    if (!this.pageRows) return;
    this.page = (this.page + 1) % this.pages;
    this.show();
  };

  var queuePager = new Pager("queue", "queue-pager", function () { layoutQueue(); });
  var unitPager = new Pager("unit-board", "unit-pager", function () { drawUnits(); });

  /* ---- the queue ------------------------------------------------------------------- */

  function layoutQueue() {
    var box = queuePager.box();
    if (!box) return;
    var items = [];
    Array.prototype.forEach.call(box.children, function (row) {
      var urgent = row.classList.contains("level-1") || row.classList.contains("level-2") ||
        !!row.querySelector(".timer.late:not(.stopped)");
      items.push({ el: row, pinned: row.classList.contains("qrow") && urgent });
    });
    queuePager.layout(items);
  }

  /* ---- the unit board -------------------------------------------------------------- */

  var alerted = {};  // team id → order id of an ack_overdue alert (until the order moves on)

  function overdue(t, now) {
    var c = cfg();
    var since = W.parseTime(t.status_at);
    var spent = since ? (now - since) / 1000 : 0;
    var order = t.active_order || null;
    if (t.status === "dispatched") {
      var unacked = !order || order.status === "pending" || order.status === "sent";
      if (unacked && order && alerted[t.id] === order.order_id) return "ack";
      if (unacked && since && spent > (c.ack_timeout_s || 60)) return "ack";
    }
    if (t.status === "en_route" && since && spent > (c.en_route_limit_s || 900)) return "en_route";
    return null;
  }

  function incidentText(id) {
    if (!id) return "";
    var inc = W.live && W.live.incidents ? W.live.incidents.get(id) : null;
    return inc && inc.title ? W.incidentTitle(inc) + " · " + id : id;
  }

  function drawUnits() {
    if (!onWall() || !W.live) return;
    var box = document.getElementById("unit-board");
    if (!box) return;
    var now = Date.now();
    var byStatus = {};
    var total = 0;
    W.live.teams.forEach(function (t) {
      var s = t.status || "available";
      if (GROUPS.indexOf(s) < 0) s = "available";
      (byStatus[s] = byStatus[s] || []).push(t);
      total += 1;
    });
    var count = document.getElementById("unit-count");
    if (count) count.textContent = String(total);
    var frag = document.createDocumentFragment();
    var items = [], headers = {}, late = 0;
    GROUPS.forEach(function (s) {
      var teams = byStatus[s];
      if (!teams || !teams.length) return;
      teams.forEach(function (t) { t._overdue = overdue(t, now); });
      // overdue first, then the longest in this status
      teams.sort(function (a, b) {
        return (b._overdue ? 1 : 0) - (a._overdue ? 1 : 0) ||
          (W.parseTime(a.status_at) || now) - (W.parseTime(b.status_at) || now) || (a.id < b.id ? -1 : 1);
      });
      var head = el("div", "unit-group status-" + s);
      head.appendChild(el("span", "dot status-" + s));
      head.appendChild(el("span", "unit-group-name", W.t("team_status." + s)));
      head.appendChild(el("span", "unit-group-count", String(teams.length)));
      frag.appendChild(head);
      headers[s] = head;
      teams.forEach(function (t) {
        var row = el("div", "unit-row status-" + s + (t._overdue ? " overdue" : ""));
        row.setAttribute("data-team", t.id);
        row.setAttribute("data-status", s);
        var line = el("div", "unit-line");
        line.appendChild(el("span", "unit-name", t.name || t.id));
        var since = W.parseTime(t.status_at);
        var time = el("span", "unit-time age", since ? W.duration((now - since) / 1000) : "—");
        if (since) time.setAttribute("data-since", String(since));
        line.appendChild(time);
        row.appendChild(line);
        var sub = el("div", "unit-sub");
        if (t._overdue) {
          late += 1;
          var why = t._overdue === "ack" ? W.t("wall.overdue_ack") : W.t("wall.overdue_en_route");
          sub.appendChild(el("span", "overdue-tag", why));
        }
        var inc = t.incident_id || (t.active_order ? t.active_order.incident_id : null);
        sub.appendChild(el("span", "unit-incident", inc ? incidentText(inc) : W.t("team_type." + (t.type || "other"))));
        // teams by name with their id everywhere: the id tells two of a name apart
        if (t.name && t.name !== t.id) sub.appendChild(el("span", "unit-id mono", t.id));
        row.appendChild(sub);
        frag.appendChild(row);
        items.push({ el: row, group: s, pinned: !!t._overdue });
      });
    });
    if (!total) frag.appendChild(el("div", "muted empty", W.t("wall.units_none")));
    box.replaceChildren(frag);
    box.setAttribute("data-overdue", String(late));
    unitPager.layout(items, headers);
  }

  /* ---- rotation and hooks ---------------------------------------------------------- */

  var unitsDirty = false, rotateTimer = null;
  function rotate() {
    if (!onWall()) return;
    // the pinned set moves with time (a timer passes its target, a team becomes overdue)
    layoutQueue();
    queuePager.next();
    drawUnits();
    unitPager.next();
  }
  function startRotation() {
    if (rotateTimer) return;
    var every = Math.max(2, cfg().wall_page_s || 10) * 1000;
    rotateTimer = setInterval(rotate, every);
  }

  W.wall = {
    queue: queuePager,
    units: unitPager,
    queueDrawn: function () {
      if (!onWall()) return;
      layoutQueue();
      startRotation();
    },
    teamsChanged: function () {
      if (!onWall()) return;
      unitsDirty = true;
      startRotation();
    },
    change: function (msg) {
      if (!onWall()) return;
      var d = msg.data || {};
      if (msg.type === "alert" && d.kind === "ack_overdue" && d.team_id) {
        alerted[d.team_id] = d.order_id;
        unitsDirty = true;
      } else if (msg.type === "order" && d.team_id && d.ack_overdue_at && d.status === "sent") {
        alerted[d.team_id] = d.order_id;
        unitsDirty = true;
      } else if (msg.type === "team" || msg.type === "snapshot") {
        unitsDirty = true;
      }
    },
    /* for tests: the next page of both lists now */
    next: function () { rotate(); },
    redraw: function () { fitMaps(); layoutQueue(); drawUnits(); if (W.live && W.live.redraw) W.live.redraw(); }
  };

  // The board is drawn at most once a second (positions may come a thousand a second;
  // they do not change it), and every few seconds anyway for the times and overdue marks.
  var lastFull = 0;
  setInterval(function () {
    if (!onWall()) return;
    var now = Date.now();
    if (unitsDirty || now - lastFull > 5000) {
      unitsDirty = false;
      lastFull = now;
      drawUnits();
    }
  }, 1000);
  /* The map keeps its picture as the screen grows: a 4K panel or a video wall zooms in
   * by the ratio of its height to 1080 px (fractional zoom), so the city fills the map
   * as it does at 1080p instead of shrinking to a stamp in the middle. */
  var BASE_ZOOM = 9, BASE_HEIGHT = 1080, maps = [];
  if (window.L && window.L.Map && window.L.Map.addInitHook) {
    window.L.Map.addInitHook(function () { maps.push(this); setTimeout(fitMaps, 0); });
  }
  function fitMaps() {
    maps.forEach(function (m) {
      var box = m.getContainer();
      if (!box || !box.isConnected || !box.closest(".console.wall")) return;
      m.options.zoomSnap = 0.25;
      m.invalidateSize(false);
      var z = BASE_ZOOM + Math.log(Math.max(window.innerHeight, 600) / BASE_HEIGHT) / Math.LN2;
      m.setZoom(Math.round(z * 4) / 4, { animate: false });
    });
  }
  /* Markers grow with the screen too (assets/10-wuwang-map.js asks). */
  W.wallScale = function () { return onWall() ? Math.max(1, window.innerHeight / BASE_HEIGHT) : 1; };
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (!onWall()) return;
      fitMaps(); layoutQueue(); drawUnits();
      if (W.live && W.live.redraw) W.live.redraw();
    }, 150);
  });
})();
