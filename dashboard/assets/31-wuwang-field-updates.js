/* 五网同构 field page — what the command centre changes on the team's own incident.
 *
 * The command service pushes every change of an incident to the field pages of the
 * teams assigned to it (docs/console.md, "The field page"); on such a change, and when
 * the live connection (re)opens, this asks /field/api/updates for the incident's latest
 * notes, level changes and plan activations (the plan by its title) and lists them under
 * the order card.
 * Kept apart from 30-wuwang-field.js: it only hooks field.onChange.
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var field = (W.field = W.field || {});
  var ROMAN = { 1: "I", 2: "II", 3: "III", 4: "IV" };
  var seen = null;  // the newest seq shown: later ones are marked new until the next change

  function box() {
    var el = document.getElementById("field-updates");
    var card = document.getElementById("field-order");
    if (!el && card && card.parentNode) {
      el = document.createElement("section");
      el.id = "field-updates";
      el.className = "field-updates";
      card.parentNode.insertBefore(el, card.nextSibling);
    }
    return el;
  }

  function text(u) {
    if (u.kind === "note_added") return W.t("field.update.note_added", { text: u.text || "" });
    if (u.kind === "level_changed") {
      return W.t("field.update.level_changed", { level: ROMAN[u.level] || "?", name: W.t("level." + u.level) });
    }
    // the plan by name in the page's language (a plan gone from the library: its level only)
    var title = W.t("app.lang_tag") === "en" ? u.title_en || u.title_zh : u.title_zh;
    if (title) return W.t("field.update.plan_named", { title: title, level: ROMAN[u.level] || "?" });
    return W.t("field.update.plan_activated", { level: ROMAN[u.level] || "?" });
  }

  function show(updates) {
    var el = box();
    if (!el) return;
    el.innerHTML = "";
    if (!updates.length) { el.hidden = true; return; }
    el.hidden = false;
    var head = document.createElement("div");
    head.className = "field-updates-title";
    head.textContent = W.t("field.updates");
    el.appendChild(head);
    var list = document.createElement("ul");
    updates.forEach(function (u) {
      var li = document.createElement("li");
      li.className = "field-update field-update-" + u.kind + (seen !== null && u.seq > seen ? " fresh" : "");
      var at = document.createElement("span");
      at.className = "muted small";
      at.textContent = u.at ? W.clock(Date.parse(u.at)) + " " : "";
      li.appendChild(at);
      li.appendChild(document.createTextNode(text(u)));
      list.appendChild(li);
    });
    el.appendChild(list);
    seen = updates[0].seq;
  }

  function load() {
    if (!field.session) return;
    fetch("/field/api/updates", { headers: { "Authorization": "Bearer " + field.session.token }, cache: "no-store" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) { if (body) show(body.updates || []); }, function () { /* offline: keep what is shown */ });
  }

  var before = field.onChange;
  field.onChange = function (msg) {
    if (before) before(msg);
    if (msg && (msg.type === "snapshot" || msg.type === "incident")) load();
  };
})();
