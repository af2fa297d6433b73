/* 五网同构 field page — a rescue team's phone.
 *
 * The outbox: every status change, report and acknowledgement is first written to
 * IndexedDB (localStorage where IndexedDB is missing) with an id made here, then sent
 * to the dashboard's /field/api/* with that id. The server side passes the id on as
 * the idempotency key, so a message sent twice (the answer was lost, the page was
 * reloaded mid-send) is stored once. An item leaves the outbox only when the server
 * has it; until then the page lists it as waiting. Sending resumes when the browser
 * says it is online, when the live connection comes back, and on a jittered back-off.
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
          W.t("field.ack");
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
    var card = document.getElementById("field-order");
    var ack = document.querySelector('[data-action="ack"]');
    if (!card) return;
    card.innerHTML = "";
    if (!order) {
      card.textContent = W.t("field.no_order");
      if (ack) ack.disabled = true;
      W.setProps("field-order-layer", { data: { type: "FeatureCollection", features: [] } });
      return;
    }
    var title = document.createElement("div");
    title.className = "order-title level-" + (order.level || 4);
    title.textContent = order.title || order.incident_id;
    var sub = document.createElement("div");
    sub.className = "muted small";
    sub.textContent = [order.incident_id, order.address || "", W.t("order." + (order.status || "sent"))]
      .filter(Boolean).join(" · ");
    card.appendChild(title);
    card.appendChild(sub);
    if (ack) ack.disabled = !(order.status === "sent" || order.status === "pending");
    if (order.lat !== undefined && order.lat !== null) {
      var pos = W.position(order.lat, order.lon, field.cfg ? field.cfg.datum : "wgs84");
      W.setProps("field-order-layer", { data: { type: "FeatureCollection", features: [{
        type: "Feature", geometry: { type: "Point", coordinates: pos },
        properties: { l: order.level || 4, tooltip: W.escape(order.title || "") } }] } });
      var key = order.incident_id + "@" + pos.join(",");
      if (field.centredOn !== key) {  // once per order and place: repeated fly-tos would never settle
        field.centredOn = key;
        W.setProps("field-map", { viewport: { center: [pos[1], pos[0]], zoom: 13 } });
      }
    }
  }

  function loadCurrent() {
    if (!field.session) return;
    fetch("/field/api/current", { headers: { "Authorization": "Bearer " + field.session.token }, cache: "no-store" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (!body) return;
        if (body.status && !field.status) showStatus(body.status, false);
        showOrder(body.order || null);
      }, function () { /* offline: the outbox and the last order stay on screen */ });
  }

  function locate(then) {
    var out = document.getElementById("field-position");
    if (!navigator.geolocation) { if (out) out.textContent = W.t("field.no_gps"); if (then) then(null); return; }
    if (out) out.textContent = W.t("field.locating");
    navigator.geolocation.getCurrentPosition(function (p) {
      field.position = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy, at: Date.now() };
      if (out) out.textContent = W.t("field.position", { lat: p.coords.latitude.toFixed(5), lon: p.coords.longitude.toFixed(5),
                                                          m: Math.round(p.coords.accuracy || 0) });
      if (then) then(field.position);
    }, function () {
      if (out) out.textContent = W.t("field.no_gps");
      if (then) then(null);
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
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
      shrinkPhoto(photoInput && photoInput.files ? photoInput.files[0] : null).then(function (photo) {
        var body = { category: cat ? cat.value : "other", description: text, lat: where.lat, lon: where.lon,
                     position_from_order: !!where.from_order, photo: photo,
                     incident_id: field.order ? field.order.incident_id : null,
                     new_event: !!document.querySelector("#field-new-event input:checked") || null };
        return field.enqueue("report", body);
      }).then(function () {
        if (desc) { desc.value = ""; W.setProps("field-description", { value: "" }); }
        W.setProps("field-new-event", { value: [] });
        if (photoInput) { photoInput.value = ""; photoInput.dispatchEvent(new Event("change")); }
        flash(W.t("field.queued"), false);
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
          field.order.status = "acked";
          showOrder(field.order);
        } else if (action === "locate") locate(null);
        else if (action === "report") report();
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

  field.attach = function (cfg, session, catalogue) {
    if (catalogue) W.catalogue = catalogue;
    var same = field.session && field.session.token === session.token && field.socket && !field.socket.stopped;
    field.cfg = cfg;
    field.session = session;
    bind();
    photoInputReady();
    // Items the server could not take yet (no route) are tried again on every visit.
    all().then(function (items) {
      items.filter(function (x) { return x.state === "held" || x.state === "sending"; }).forEach(function (x) {
        x.state = "waiting";
        put(x);
      });
    });
    render();
    if (field.status) showStatus(field.status, false);
    if (same) { showOrder(field.order); return; }
    if (field.socket) field.socket.stop();
    field.socket = new W.Socket(cfg.ws_url, session.token, {
      message: function (msg) {
        if (msg.type === "snapshot") {
          W.setProps("live-status", { data: { connected: true, stale: false, expired: false, since: Date.now() } });
          loadCurrent();
          field.flush();
        } else if (msg.type === "order" || msg.type === "incident") {
          loadCurrent();
        } else if (msg.type === "team" && msg.data && msg.data.status) {
          showStatus(msg.data.status, false);
        }
        if (field.onChange) field.onChange(msg);
      },
      close: function (ev) {
        W.setProps("live-status", { data: { connected: false, stale: true, expired: false, since: Date.now(),
                                            unavailable: !!ev && ev.code === 1013 } });
      },
      expired: function () {
        W.setProps("live-status", { data: { connected: false, stale: true, expired: true, since: Date.now() } });
      }
    });
    loadCurrent();
    field.flush();
  };

  field.stop = function () {
    if (field.socket) field.socket.stop();
    field.socket = null;
    field.session = null;
  };
  field.pending = function () { return all(); };
})();
