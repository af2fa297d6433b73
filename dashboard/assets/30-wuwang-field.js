/* 五网同构 field page — a rescue team's phone.
 *
 * The outbox: every status change, report and acknowledgement is first written to
 * IndexedDB (localStorage where IndexedDB is missing) with an id made here, then sent
 * to the dashboard's /field/api/* with that id. The server side passes the id on as
 * the idempotency key, so a message sent twice (the answer was lost, the page was
 * reloaded mid-send) is stored once. An item leaves the outbox only when the server
 * has it; until then the page lists it as waiting. Sending resumes when the browser
 * says it is online, when the live connection comes back, and on a jittered back-off.
 *
 * Navigation: the phone's GPS (watchPosition; the team's last tracked position until the
 * first fix) gives the distance and 8-point bearing to the scene and a line to it on the
 * map, which follows the team until the user pans it by hand. A new order vibrates,
 * sounds once (a WebAudio tone, no file) and stays in the header until acknowledged.
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var DB_NAME = "wuwang-field", STORE = "outbox";
  var PHOTO_MAX_PX = 1280, PHOTO_QUALITY = 0.7;

  var field = (W.field = W.field || {});
  field.session = null;
  field.cfg = null;
  field.socket = null;
  field.order = null;
  field.position = null;
  field.sending = false;
  field.retryTimer = null;
  field.backoff = 0;
  field.status = null;
  field.here = null;         // the team's position: the phone's fix, else the tracked one
  field.follow = true;       // the map follows the team until panned by hand
  field.fitted = null;       // what the map was last fitted to (no refit for the same)
  field.reportFeedback = false;  // a report was just made: say whether it is sent or kept
  field.ackedHere = {};
  var audio = null;

  /* ---- storage: IndexedDB, or localStorage as a fallback ---- */
  var dbPromise = null;
  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve) {
      if (!window.indexedDB) { resolve(null); return; }
      var req;
      try { req = indexedDB.open(DB_NAME, 1); } catch (e) { resolve(null); return; }
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "id" }); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { resolve(null); };
    });
    return dbPromise;
  }
  function lsKey() { return "wuwang.outbox." + (field.session ? field.session.team_id || field.session.user_id : "?"); }
  function lsAll() { try { return JSON.parse(localStorage.getItem(lsKey()) || "[]"); } catch (e) { return []; } }
  function lsSave(items) { localStorage.setItem(lsKey(), JSON.stringify(items)); }

  function all() {
    return openDb().then(function (db) {
      var team = field.session ? field.session.team_id : null;
      if (!db) return lsAll();
      return new Promise(function (resolve, reject) {
        var req = db.transaction(STORE, "readonly").objectStore(STORE).getAll();
        req.onsuccess = function () {
          resolve(req.result.filter(function (x) { return x.team === team; })
            .sort(function (a, b) { return a.created - b.created || (a.id < b.id ? -1 : 1); }));
        };
        req.onerror = function () { reject(req.error); };
      });
    });
  }
  function put(item) {
    return openDb().then(function (db) {
      if (!db) { var items = lsAll().filter(function (x) { return x.id !== item.id; }); items.push(item); lsSave(items); return; }
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, "readwrite");
        tx.objectStore(STORE).put(item);
        tx.oncomplete = function () { resolve(); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function remove(id) {
    return openDb().then(function (db) {
      if (!db) { lsSave(lsAll().filter(function (x) { return x.id !== id; })); return; }
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, "readwrite");
        tx.objectStore(STORE).delete(id);
        tx.oncomplete = function () { resolve(); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }

  function newId(kind) {
    var rnd = (window.crypto && crypto.randomUUID) ? crypto.randomUUID().replace(/-/g, "") :
      (Date.now().toString(16) + Math.random().toString(16).slice(2));
    return "web-" + kind + "-" + rnd.slice(0, 40);
  }
  function nextSeq() {
    var key = "wuwang.seq." + (field.session ? field.session.team_id : "?");
    var n = Math.max(Number(localStorage.getItem(key) || 0) + 1, Date.now());  // grows across reloads
    localStorage.setItem(key, String(n));
    return n;
  }

  /* ---- sending ---- */
  field.enqueue = function (kind, body) {
    var item = { id: newId(kind), kind: kind, team: field.session.team_id, created: Date.now(),
                 ts: new Date().toISOString(), body: body, attempts: 0, state: "waiting", error: null };
    if (kind === "status") item.body.seq = nextSeq();
    return put(item).then(function () { render(); field.flush(); return item; });
  };

  field.flush = function () {
    if (field.sending || !field.session) return Promise.resolve();
    field.sending = true;
    clearTimeout(field.retryTimer);
    return all().then(function (items) {
      var pending = items.filter(function (x) { return x.state !== "rejected" && x.state !== "held"; });
      var chain = Promise.resolve(true);
      pending.forEach(function (item) {
        chain = chain.then(function (go) { return go ? send(item) : false; });
      });
      return chain;
    }).then(function (allSent) {
      field.sending = false;
      render();
      if (allSent === false) retryLater();
      else field.backoff = 0;
    }, function () {
      field.sending = false;
      retryLater();
    });
  };

  function retryLater() {
    field.backoff = Math.min(60000, Math.max(2000, field.backoff * 2));
    clearTimeout(field.retryTimer);
    field.retryTimer = setTimeout(field.flush, field.backoff * (0.5 + Math.random() * 0.5));
  }

  /* One item: true to go on with the next, false to stop (offline, logged out). */
  function send(item) {
    item.attempts += 1;
    item.state = "sending";
    render();
    var body = Object.assign({ id: item.id, ts: item.ts }, item.body);
    return fetch("/field/api/" + item.kind, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + field.session.token,
                 "Idempotency-Key": item.id },
      body: JSON.stringify(body),
      cache: "no-store"
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (answer) {
        if (res.ok || res.status === 409) {  // stored now, or stored before (a repeat)
          if (item.kind === "status") showStatus(item.body.status, false);
          if (item.kind === "shelter") {  // the shelter's count and status as applied
            shelterSay(W.t("field.shelter_sent"), false);
            loadCurrent();
          }
          return remove(item.id).then(function () { return true; });
        }
        // a refusal with a catalogue key is said in the team's language; the server's detail otherwise
        item.error = (answer && answer.i18n_key && W.t(answer.i18n_key)) ||
          (answer && (answer.detail || answer.error)) || ("HTTP " + res.status);
        if (res.status === 401) {
          item.state = "waiting";
          return put(item).then(function () { needLogin(); return false; });
        }
        if (res.status === 501) {  // no route for it yet: keep it, do not block the others
          item.state = "held";
          return put(item).then(function () { return true; });
        }
        if (res.status >= 500 || res.status === 429 || res.status === 408) {
          item.state = "waiting";
          return put(item).then(function () { return false; });
        }
        item.state = "rejected";  // the server read it and refused: keep it visible, never drop it silently
        return put(item).then(function () { return true; });
      });
    }, function () {
      item.state = "waiting";
      item.error = W.t("field.offline");
      return put(item).then(function () { return false; });
    });
  }

  function needLogin() {
    var el = document.getElementById("field-queue");
    if (el) el.setAttribute("data-login", "1");
  }

  /* ---- the page ---- */
  function render() {
    var el = document.getElementById("field-queue");
    if (!el) return;
    all().then(function (items) {
      el.innerHTML = "";
      reportFeedback(items);
      if (!items.length) {
        var p = document.createElement("p");
        p.className = "muted";
        p.textContent = W.t("field.outbox_empty");
        el.appendChild(p);
        return;
      }
      var head = document.createElement("p");
      head.className = "outbox-count";
      head.textContent = W.t("field.waiting", { n: items.length });
      el.appendChild(head);
      items.forEach(function (item) {
        var row = document.createElement("div");
        row.className = "outbox-item " + item.state;
        row.setAttribute("data-outbox", item.id);
        var what = item.kind === "status" ? W.t("team_status." + item.body.status) :
          item.kind === "report" ? W.t("report." + item.body.category) + " — " + (item.body.description || "").slice(0, 40) :
          item.kind === "shelter" ? W.t("field.shelter_item", { name: item.body.name || item.body.shelter_id, n: item.body.occupancy }) :
          W.t("field.ack");
        if (item.kind === "report" && item.body.new_event) what += " · " + W.t("field.new_event_tag");
        var label = document.createElement("span");
        label.textContent = W.dateTime(item.created) + "  " + what;
        var state = document.createElement("span");
        state.className = "small " + (item.state === "rejected" ? "bad" : "muted");
        state.textContent = W.t("outbox." + item.state) + (item.error ? " (" + item.error + ")" : "");
        row.appendChild(label);
        row.appendChild(state);
        if (item.state === "rejected") {
          var drop = document.createElement("button");
          drop.className = "btn btn-small btn-ghost";
          drop.textContent = W.t("field.discard");
          drop.setAttribute("data-discard", item.id);
          row.appendChild(drop);
        }
        el.appendChild(row);
      });
    });
  }

  /* "Saved, sent when online" only while the report is still on the phone, "report sent"
   * once it left: from the same list as the outbox's own line, so the two never disagree. */
  function reportFeedback(items) {
    if (!field.reportFeedback) return;
    var kept = items.some(function (x) { return x.kind === "report" && x.state !== "rejected"; });
    flash(W.t(kept ? "field.queued" : "field.report_sent"), false);
    if (!kept) field.reportFeedback = false;
  }

  function showStatus(status, queued) {
    field.status = status;
    var el = document.getElementById("field-status");
    if (el) {
      el.textContent = W.t("team_status." + status) + (queued ? " (" + W.t("outbox.waiting") + ")" : "");
      el.className = "status-current status-" + status;
    }
    var buttons = document.querySelectorAll("[data-status]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].classList.toggle("current", buttons[i].getAttribute("data-status") === status);
    }
  }

  function showOrder(order) {
    field.order = order;
    field.drawn = null;  // the page may have been drawn again (a language switch): draw the line again
    var card = document.getElementById("field-order");
    var acks = document.querySelectorAll('[data-action="ack"]');  // the banner's and the card's
    if (!card) return;
    card.innerHTML = "";
    if (!order) {
      card.textContent = W.t("field.no_order");
      setDisabled(acks, true);
      W.setProps("field-order-layer", { data: { type: "FeatureCollection", features: [] } });
      announce(null, false);
      reportTarget();
      navigate();
      return;
    }
    // acknowledged on this phone, still in the outbox: not "new" again when the page reloads it
    if (field.ackedHere[orderKey(order)] && (order.status === "sent" || order.status === "pending")) order.status = "acked";
    var title = document.createElement("div");
    title.className = "order-title level-" + (order.level || 4);
    title.textContent = W.incidentTitle(order) || order.incident_id;
    var sub = document.createElement("div");
    sub.className = "muted small";
    sub.textContent = [order.incident_id, W.t("order." + (order.status || "sent"))].join(" · ");
    var hasPlace = order.lat !== undefined && order.lat !== null;
    var where = document.createElement("div");
    where.className = "order-where";
    where.textContent = order.address ? W.t("field.address", { address: order.address }) :
      hasPlace ? W.t("field.location", { coords: W.coordsText(order.lat, order.lon) }) : "";
    var away = document.createElement("div");
    away.className = "order-away";
    card.appendChild(title);
    card.appendChild(where);
    card.appendChild(away);
    card.appendChild(sub);
    var awaiting = order.status === "sent" || order.status === "pending";
    setDisabled(acks, !awaiting);
    announce(order, awaiting);
    if (hasPlace) {
      var pos = W.position(order.lat, order.lon, field.cfg ? field.cfg.datum : "wgs84");
      W.setProps("field-order-layer", { data: { type: "FeatureCollection", features: [{
        type: "Feature", geometry: { type: "Point", coordinates: pos },
        properties: { l: order.level || 4, tooltip: W.escape(W.incidentTitle(order)) } }] } });
    }
    reportTarget();
    navigate();
  }

  function setDisabled(buttons, disabled) {
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = disabled;
  }

  function orderKey(order) { return order ? (order.order_id || order.incident_id) : null; }

  /* A new order: the banner stays until acknowledged; vibration and a tone once per order
   * on this phone (remembered across reloads, so a reload does not ring again). */
  function announce(order, awaiting) {
    var box = document.getElementById("field-alert");
    if (box) {
      box.hidden = !awaiting;
      var what = box.querySelector(".order-alert-title");
      if (what) what.textContent = awaiting ? W.incidentTitle(order) || order.incident_id : "";
    }
    if (!awaiting) return;
    var key = "wuwang.announced." + (field.session ? field.session.team_id : "?");
    var id = orderKey(order);
    if (localStorage.getItem(key) === id) return;
    localStorage.setItem(key, id);
    try { if (navigator.vibrate) navigator.vibrate([300, 150, 300, 150, 600]); } catch (e) { /* not allowed here */ }
    ring();
    showFollowing(true);  // a new place to go: the map shows the way again
  }

  /* Two short tones, made here (no sound file). Browsers start audio only after a touch:
   * the context is made (or resumed) by the first tap on the page (bind). */
  function audioContext() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audio) { try { audio = new Ctx(); } catch (e) { return null; } }
    if (audio.state === "suspended" && audio.resume) audio.resume().catch(function () { /* no gesture yet */ });
    return audio;
  }
  function ring() {
    var ctx = audioContext();
    if (!ctx) return;
    [0, 0.35].forEach(function (at, i) {
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      var start = ctx.currentTime + at;
      osc.type = "square";
      osc.frequency.value = i ? 1175 : 880;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.28);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.3);
    });
  }

  /* Distance and bearing to the scene, the line to it, and the map following the team. */
  function navigate() {
    var order = field.order, here = field.here;
    var datum = field.cfg ? field.cfg.datum : "wgs84";
    var scene = order && order.lat !== undefined && order.lat !== null ? order : null;
    var away = document.querySelector("#field-order .order-away");
    if (away) {
      away.textContent = !scene ? "" : !here ? W.t("field.away_unknown") : W.t("field.away", {
        distance: W.distanceText(W.distanceM(here.lat, here.lon, scene.lat, scene.lon)),
        bearing: W.t(W.compassKey(W.bearingDeg(here.lat, here.lon, scene.lat, scene.lon)))
      });
    }
    var features = [];
    var me = here ? W.position(here.lat, here.lon, datum) : null;
    var to = scene ? W.position(scene.lat, scene.lon, datum) : null;
    var drawn = JSON.stringify([me, to]);
    if (drawn !== field.drawn) {  // a fix at the same place: nothing to redraw
      field.drawn = drawn;
      if (me && to) features.push({ type: "Feature", geometry: { type: "LineString", coordinates: [me, to] }, properties: { route: true } });
      if (me) features.push({ type: "Feature", geometry: { type: "Point", coordinates: me }, properties: { here: true } });
      W.setProps("field-route-layer", { data: { type: "FeatureCollection", features: features } });
    }
    if (!field.follow) return;
    // Fitted again only when something moved by about 10 m: a GPS fix every second would
    // otherwise keep the map in motion.
    var round = function (p) { return p ? p.map(function (v) { return v.toFixed(4); }).join(",") : "-"; };
    var key = round(me) + ">" + round(to);
    if (key === field.fitted || (!me && !to)) return;
    field.fitted = key;
    if (me && to) {
      W.setProps("field-map", { viewport: { bounds: [[me[1], me[0]], [to[1], to[0]]],
                                            options: { padding: [40, 40], maxZoom: 16 } } });
    } else {
      var p = me || to;
      W.setProps("field-map", { viewport: { center: [p[1], p[0]], zoom: 15 } });
    }
  }

  /* Panned by hand: stop following until "follow my position" is pressed. */
  function showFollowing(on) {
    field.follow = on;
    if (on) field.fitted = null;
    var b = document.querySelector('[data-action="follow"]');
    if (b) b.hidden = on;
  }
  W.map.fieldMapDragged = function () { showFollowing(false); };
  /* The Leaflet map itself, for what the page reads back from it (the browser tests). */
  W.map.fieldMapSeen = function (ev) { if (ev && ev.target && ev.target.getBounds) field.leaflet = ev.target; };
  function followAgain() {
    showFollowing(true);
    navigate();
  }

  function newEventTicked() {
    var box = document.querySelector("#field-new-event input");
    return !!(box && box.checked);
  }
  /* Where the report goes: the current order's incident unless "new event" is ticked. */
  function reportTarget() {
    var el = document.getElementById("field-report-target");
    if (!el) return;
    var order = field.order;
    el.hidden = !order;
    el.textContent = !order ? "" : newEventTicked() ? W.t("field.report_new_event") :
      W.t("field.report_to_order", { incident: order.incident_id });
  }

  /* The phone's own position, as it moves. */
  function watchPosition() {
    if (field.watching !== undefined || !navigator.geolocation) return;
    field.watching = navigator.geolocation.watchPosition(function (p) {
      field.position = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy, at: Date.now() };
      field.here = field.position;
      navigate();
      if (!field.reportFeedback) showPosition(p);  // a report's "saved"/"sent" stays until it is settled
    }, function () { /* no permission or no fix: the tracked position, if any, stays */ },
    { enableHighAccuracy: true, maximumAge: 10000 });
  }

  function loadCurrent() {
    if (!field.session) return;
    fetch("/field/api/current", { headers: { "Authorization": "Bearer " + field.session.token }, cache: "no-store" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (!body) return;
        if (body.status && !field.status) showStatus(body.status, false);
        if (body.position && (!field.position || Date.now() - field.position.at > 120000)) field.here = body.position;
        showOrder(body.order || null);
        showWarnings(body.warnings || []);
        showShelters(body.shelters || []);
      }, function () { /* offline: the outbox and the last order stay on screen */ });
  }

  /* 应急避难场所 near the team: the list to count in, each with its last count. */
  function showShelters(list) {
    var select = document.getElementById("field-shelter");
    if (!select) return;
    var chosen = select.value;
    field.shelters = {};
    select.textContent = "";
    list.forEach(function (s) {
      field.shelters[s.id] = s;
      var o = document.createElement("option");
      o.value = s.id;
      o.textContent = W.t("field.shelter_option", { name: s.name, distance_m: s.distance_m });
      select.appendChild(o);
    });
    if (chosen && field.shelters[chosen]) select.value = chosen;
    var none = document.getElementById("field-shelter-none");
    if (none) none.hidden = list.length > 0;
    var form = document.getElementById("field-shelter-form");
    if (form) form.hidden = list.length === 0;
    shelterNow();
  }
  // literal keys, so the catalogue check sees each one
  var SHELTER_STATUS = {
    open: "shelter.status.open", full: "shelter.status.full", closed: "shelter.status.closed"
  };
  function shelterNow() {
    var select = document.getElementById("field-shelter");
    var out = document.getElementById("field-shelter-now");
    if (!select || !out) return;
    var s = field.shelters && field.shelters[select.value];
    var status = s && SHELTER_STATUS[s.status] ? W.t(SHELTER_STATUS[s.status]) + " · " : "";
    out.textContent = s ? status +
      W.t("shelter.occupancy", { occupancy: s.occupancy, capacity: s.capacity, free: s.free }) : "";
  }
  function countShelter() {
    var select = document.getElementById("field-shelter");
    var input = document.getElementById("field-shelter-count");
    var s = select && field.shelters ? field.shelters[select.value] : null;
    var text = input ? String(input.value || "").trim() : "";
    if (!s) { shelterSay(W.t("field.shelter_none"), true); return; }
    if (!/^[0-9]{1,6}$/.test(text)) { shelterSay(W.t("field.shelter_need_count"), true); return; }
    field.enqueue("shelter", { shelter_id: s.id, name: s.name, occupancy: Number(text) }).then(function () {
      W.setProps("field-shelter-count", { value: "" });
      if (input) input.value = "";
      shelterSay(W.t("field.shelter_queued"), false);
    });
  }
  function shelterSay(text, bad) {
    var el = document.getElementById("field-shelter-msg");
    if (el) { el.textContent = text; el.classList.toggle("bad", !!bad); }
  }

  /* 预警: the warnings sent to this team, the most severe first, each in its colour. */
  var LEVELS = ["red", "orange", "yellow", "blue"];
  function showWarnings(list) {
    var box = document.getElementById("field-warnings");
    if (!box) return;
    box.textContent = "";
    list = list.slice().sort(function (a, b) { return LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level); });
    list.forEach(function (w) {
      var card = document.createElement("div");
      card.className = "field-warning level-" + w.level;
      card.setAttribute("data-identifier", w.identifier || "");
      var head = document.createElement("b");
      head.textContent = W.t("warning_level." + w.level) + " " + (w.headline || "");
      card.appendChild(head);
      [w.instruction, w.description].forEach(function (text) {
        if (!text) return;
        var p = document.createElement("p");
        p.textContent = text;
        card.appendChild(p);
      });
      box.appendChild(card);
    });
    box.hidden = list.length === 0;
  }

  function locate(then) {
    var out = document.getElementById("field-position");
    if (!navigator.geolocation) { if (out) out.textContent = W.t("field.no_gps"); if (then) then(null); return; }
    if (out) out.textContent = W.t("field.locating");
    navigator.geolocation.getCurrentPosition(function (p) {
      field.position = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy, at: Date.now() };
      field.here = field.position;
      navigate();
      showPosition(p);
      if (then) then(field.position);
    }, function () {
      if (out) out.textContent = W.t("field.no_gps");
      if (then) then(null);
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }

  function showPosition(p) {
    var out = document.getElementById("field-position");
    if (!out) return;
    out.textContent = W.t("field.position", { lat: p.coords.latitude.toFixed(5), lon: p.coords.longitude.toFixed(5),
                                              m: Math.round(p.coords.accuracy || 0) });
    out.classList.remove("bad");
  }

  function shrinkPhoto(file) {
    return new Promise(function (resolve) {
      if (!file) { resolve(null); return; }
      var reader = new FileReader();
      reader.onload = function () {
        var img = new Image();
        img.onload = function () {
          var scale = Math.min(1, PHOTO_MAX_PX / Math.max(img.width, img.height));
          var c = document.createElement("canvas");
          c.width = Math.round(img.width * scale);
          c.height = Math.round(img.height * scale);
          c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
          resolve(c.toDataURL("image/jpeg", PHOTO_QUALITY));
        };
        img.onerror = function () { resolve(null); };
        img.src = reader.result;
      };
      reader.onerror = function () { resolve(null); };
      reader.readAsDataURL(file);
    });
  }

  function report() {
    var cat = document.getElementById("field-category");
    var desc = document.getElementById("field-description");
    var photoInput = document.querySelector('[data-input="photo"] input');
    var text = desc ? desc.value.trim() : "";
    if (!text) { flash(W.t("field.need_description"), true); return; }
    var go = function (pos) {
      var where = pos || (field.order && field.order.lat !== undefined ? { lat: field.order.lat, lon: field.order.lon, from_order: true } : null);
      if (!where) { flash(W.t("field.need_position"), true); return; }
      var newEvent = newEventTicked();
      shrinkPhoto(photoInput && photoInput.files ? photoInput.files[0] : null).then(function (photo) {
        var body = { category: cat ? cat.value : "other", description: text, lat: where.lat, lon: where.lon,
                     position_from_order: !!where.from_order, photo: photo,
                     incident_id: field.order && !newEvent ? field.order.incident_id : null };
        if (newEvent) body.new_event = true;
        field.reportFeedback = true;
        return field.enqueue("report", body);
      }).then(function () {
        if (desc) { desc.value = ""; W.setProps("field-description", { value: "" }); }
        if (photoInput) { photoInput.value = ""; photoInput.dispatchEvent(new Event("change")); }
        W.setProps("field-new-event", { value: [] });
        setTimeout(reportTarget, 0);
      });
    };
    if (field.position && Date.now() - field.position.at < 120000) go(field.position);
    else locate(go);
  }

  function flash(text, bad) {
    var el = document.getElementById("field-position");
    if (el) { el.textContent = text; el.classList.toggle("bad", !!bad); }
  }

  var bound = false;
  function bind() {
    if (bound) return;
    bound = true;
    // the first touch lets the page make sound later (a new order's tone)
    document.addEventListener("pointerdown", audioContext, { once: true });
    document.addEventListener("change", function (ev) {
      if (ev.target && ev.target.closest && ev.target.closest("#field-new-event")) reportTarget();
      if (ev.target && ev.target.id === "field-shelter") shelterNow();
    });
    document.addEventListener("click", function (ev) {
      var t = ev.target;
      if (!t || !t.closest || !field.session) return;
      var s = t.closest("[data-status]");
      if (s) {
        var status = s.getAttribute("data-status");
        showStatus(status, true);
        field.enqueue("status", { status: status, incident_id: field.order ? field.order.incident_id : null });
        return;
      }
      var a = t.closest("[data-action]");
      if (a) {
        var action = a.getAttribute("data-action");
        if (action === "ack" && field.order) {
          field.enqueue("ack", { order_id: field.order.order_id, incident_id: field.order.incident_id });
          field.ackedHere[orderKey(field.order)] = true;
          field.order.status = "acked";
          showOrder(field.order);
        } else if (action === "follow") followAgain();
        else if (action === "locate") locate(null);
        else if (action === "report") report();
        else if (action === "shelter") countShelter();
        return;
      }
      var d = t.closest("[data-discard]");
      if (d) { remove(d.getAttribute("data-discard")).then(render); }
    });
    window.addEventListener("online", function () { field.flush(); if (field.socket) field.socket.reconnectNow(); });
  }

  /* A camera button in the page's language (the browser's own file button speaks
   * the browser's language) over a hidden <input type=file>. */
  function photoInputReady() {
    var holder = document.querySelector('[data-input="photo"]');
    if (!holder || holder.querySelector("input")) return;
    var label = document.createElement("label");
    label.className = "btn photo-btn";
    var input = document.createElement("input");
    input.type = "file";
    input.accept = "image/*";
    input.setAttribute("capture", "environment");
    input.hidden = true;
    var text = document.createElement("span");
    text.textContent = W.t("field.photo_pick");
    label.appendChild(input);
    label.appendChild(text);
    var name = document.createElement("span");
    name.className = "muted small photo-name";
    name.textContent = W.t("field.photo_none");
    input.addEventListener("change", function () {
      name.textContent = input.files && input.files[0] ? input.files[0].name : W.t("field.photo_none");
    });
    holder.appendChild(label);
    holder.appendChild(name);
  }

  /* The connection's state, kept: a page drawn again (a language switch) shows it at once. */
  function liveStatus(status) {
    field.liveStatus = status;
    W.setProps("live-status", { data: status });
  }

  field.attach = function (cfg, session, catalogue) {
    if (catalogue) W.catalogue = catalogue;
    var same = field.session && field.session.token === session.token && field.socket && !field.socket.stopped;
    field.cfg = cfg;
    field.session = session;
    bind();
    photoInputReady();
    watchPosition();
    // Items the server could not take yet (no route) are tried again on every visit.
    all().then(function (items) {
      items.filter(function (x) { return x.state === "held" || x.state === "sending"; }).forEach(function (x) {
        x.state = "waiting";
        put(x);
      });
    });
    render();
    showFollowing(true);  // a map drawn again starts at the city's view: show the way again
    if (field.status) showStatus(field.status, false);
    if (same) {
      showOrder(field.order);
      if (field.liveStatus) liveStatus(field.liveStatus);
      return;
    }
    if (field.socket) field.socket.stop();
    field.socket = new W.Socket(cfg.ws_url, session.token, {
      message: function (msg) {
        if (msg.type === "snapshot") {
          liveStatus({ connected: true, stale: false, expired: false, since: Date.now() });
          loadCurrent();
          field.flush();
        } else if (msg.type === "order" || msg.type === "incident" || msg.type === "warning") {
          loadCurrent();
        } else if (msg.type === "team" && msg.data && msg.data.status) {
          showStatus(msg.data.status, false);
        }
        if (field.onChange) field.onChange(msg);
      },
      close: function (ev) {
        liveStatus({ connected: false, stale: true, expired: false, since: Date.now(),
                     unavailable: !!ev && ev.code === 1013 });
      },
      expired: function () {
        liveStatus({ connected: false, stale: true, expired: true, since: Date.now() });
      }
    });
    loadCurrent();
    field.flush();
  };

  field.stop = function () {
    if (field.watching !== undefined && navigator.geolocation) navigator.geolocation.clearWatch(field.watching);
    field.watching = undefined;
    if (field.socket) field.socket.stop();
    field.socket = null;
    field.session = null;
  };
  field.pending = function () { return all(); };
})();
