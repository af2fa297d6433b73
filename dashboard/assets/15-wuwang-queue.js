/* 五网同构 console — the incident queue's ranking and what it announces.
 *
 * Pure functions of plain data (no DOM, no clock: `now` is passed in), so they are
 * tested with plain inputs (tests/dashboard/test_queue_rank_js.py) and used by the live
 * picture (assets/20-wuwang-live.js) and the announcer (assets/25-wuwang-announce.js).
 *
 * Sections, as a dispatcher works them:
 *   awaiting (待核实)  new incidents: the call is still being processed;
 *   active   (处置中)  verified, dispatched, on scene; then, at the bottom of the section
 *                      whatever their level, resolved ones awaiting the closing review
 *                      (待核查: the work is done, only the paperwork is left);
 *   held     (挂起)    incidents a dispatcher parked on purpose (the `held` flag: waiting
 *                      for a resource, for information, lower priority), whatever their
 *                      state: no clock runs, gravest level first, then the oldest hold.
 * Within a section: gravest level first, then the earliest deadline — the time left
 * against the section's target (the order by deadline is the order by time left, at any
 * `now`), so an incident past its target rises above one that is merely older:
 *   awaiting: first alarm + the call-processing target (NFPA 1225: 60 s);
 *   active:   first alarm + the active plan's arrival target (DASHBOARD_ARRIVAL_TARGET_S
 *             without one), until a team is on scene (then no clock).
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});

  var SECTIONS = ["awaiting", "active", "held"];
  var SECTION_OF = {
    "new": "awaiting",
    verified: "active", dispatched: "active", on_scene: "active",
    resolved: "active"
  };

  function ms(value) {
    if (value === null || value === undefined || value === "") return null;
    if (typeof value === "number") return value;
    var t = Date.parse(value);
    return isNaN(t) ? null : t;
  }

  /* The section of an incident body ({state, held}); a held one is in "held" whatever
   * its state. A bare state string is taken as an incident that is not held. */
  function sectionOf(inc) {
    if (typeof inc === "string") inc = { state: inc };
    var section = (inc && SECTION_OF[inc.state]) || null;
    return section && inc.held ? "held" : section;
  }

  /* The deadline (epoch ms) an incident runs against in its section, or null. */
  function deadline(inc, targets) {
    var section = sectionOf(inc);
    var first = ms(inc.first_alarm_at) || ms(inc.opened_at);
    if (first === null) return null;
    if (section === "awaiting") return first + (targets.call_target_s || 60) * 1000;
    if (section === "active" && ms(inc.first_on_scene_at) === null) {
      // the active plan's arrival target (recorded when it was activated), else the default
      var plan = inc.active_plan || {};
      return first + (plan.arrival_target_s || targets.arrival_target_s || 600) * 1000;
    }
    return null;
  }

  function compare(a, b) {
    if (a.waiting !== b.waiting) return a.waiting ? 1 : -1;  // 待核查 below the live work
    if (a.level !== b.level) return a.level - b.level;
    if (a.due !== b.due) {
      if (a.due === null) return 1;  // no clock running: below those with one
      if (b.due === null) return -1;
      return a.due - b.due;
    }
    if (a.held_since !== b.held_since) return (a.held_since || 0) - (b.held_since || 0);
    if (a.first_alarm !== b.first_alarm) return (a.first_alarm || 0) - (b.first_alarm || 0);
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  }

  /* incidents: open incident bodies as /ws sends them; now: epoch ms; targets:
   * {call_target_s, arrival_target_s}. Returns {total, sections: [{id, count, rows}]},
   * the rows ranked most urgent first, each with its section, deadline and the seconds
   * left against it (negative: late). Incidents of no section (closed…) are left out. */
  function rank(incidents, now, targets) {
    targets = targets || {};
    var bySection = {};
    SECTIONS.forEach(function (s) { bySection[s] = []; });
    (incidents || []).forEach(function (inc) {
      var section = sectionOf(inc);
      if (!section || inc.is_open === false) return;
      var due = deadline(inc, targets);
      bySection[section].push({
        id: inc.id, level: inc.level, state: inc.state, section: section, due: due,
        left_s: due === null ? null : (due - now) / 1000,
        waiting: section === "active" && inc.state === "resolved",
        held_since: section === "held" ? ms(inc.held.at) : null,
        first_alarm: ms(inc.first_alarm_at) || ms(inc.opened_at)
      });
    });
    var total = 0;
    var sections = SECTIONS.map(function (s) {
      var rows = bySection[s].sort(compare);
      total += rows.length;
      return { id: s, count: rows.length, rows: rows };
    });
    return { total: total, sections: sections };
  }

  /* A title as the command service makes it — "<type in zh> · <where>" (火灾 · 幸福路12号) —
   * split so the screen can say the what in its own language: {type, where} when the
   * title starts with a type's zh name (typeZh: type → zh name; any type, so a title made
   * before a reclassification shows the current type), else {type: null, where: title}. */
  function titleParts(title, type, typeZh) {
    title = title || "";
    var keys = Object.keys(typeZh || {});
    for (var i = 0; i < keys.length; i++) {
      var head = typeZh[keys[i]] + " · ";
      if (title.indexOf(head) === 0 && title.length > head.length) {
        return { type: type || keys[i], where: title.slice(head.length) };
      }
      if (title === typeZh[keys[i]]) return { type: type || keys[i], where: "" };
    }
    return { type: null, where: title };
  }

  /* One list of every section's rows, for a screen without sections (the wall): gravest
   * level first, then the sections' order, then as ranked within the section. */
  function flat(ranked) {
    var rows = [];
    ranked.sections.forEach(function (sec, s) {
      sec.rows.forEach(function (r, i) { rows.push({ row: r, s: s, i: i }); });
    });
    rows.sort(function (a, b) { return a.row.level - b.row.level || a.s - b.s || a.i - b.i; });
    return rows.map(function (x) { return x.row; });
  }

  /* What a change of an incident announces: "new" (not seen before), "raised" (a graver
   * level than before: a lower number), or null. `prev` is the incident as held before
   * the change (undefined if none); `known` says whether the picture had been loaded
   * (a first snapshot announces nothing: those incidents are not news). */
  function news(prev, next, known) {
    if (!next || next.is_open === false || !known) return null;
    if (!prev) return "new";
    if (next.level && prev.level && next.level < prev.level) return "raised";
    return null;
  }

  W.queueRank = { SECTIONS: SECTIONS, sectionOf: sectionOf, deadline: deadline, rank: rank, flat: flat, news: news,
                   titleParts: titleParts };
})();
