/* 五网同构 console — shared browser helpers: translation, time, GCJ-02.
 * Served locally by Dash from dashboard/assets (no CDN). */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});

  /* Translation: the catalogue of the chosen language arrives in the "i18n" store. */
  W.catalogue = W.catalogue || {};
  W.t = function (key, values) {
    var text = W.catalogue[key];
    if (text === undefined) return key;
    if (values) {
      text = text.replace(/\{(\w+)\}/g, function (m, name) {
        return values[name] === undefined ? m : String(values[name]);
      });
    }
    return text;
  };

  /* An incident's title in the page's language (dashboard/i18n/data.py incident_title
   * says the same): the command service writes the titles it makes in Chinese
   * ("火灾 · 樊城区人民路12号"); an English page says the incident's type in English and
   * keeps the place (a name). A
   * title without Chinese (typed so) is shown as it is. */
  var HAN = /[\u3400-\u9fff]/;
  W.incidentTitle = function (inc) {
    if (!inc) return "";
    var title = inc.title || "";
    var type = inc.type || inc.incident_type;
    if (W.t("app.lang_tag") !== "en" || !HAN.test(title)) return title || inc.id || inc.incident_id || "";
    if (!type) return inc.id || inc.incident_id || "";
    // "火灾 · 樊城区人民路12号": what, then where; the place is a name and stays as written
    var cut = title.indexOf(" · ");
    return W.t("type." + type) + (cut > 0 ? title.slice(cut) : "");
  };

  W.escape = function (s) {
    return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  };

  /* Times: the command centre's wall clock (Asia/Shanghai), whatever the browser's zone. */
  var TZ = "Asia/Shanghai";
  var fmt = {};
  function formatter(opts) {
    var key = JSON.stringify(opts);
    if (!fmt[key]) {
      try {
        fmt[key] = new Intl.DateTimeFormat("zh-CN", Object.assign({ timeZone: TZ, hour12: false }, opts));
      } catch (e) {
        fmt[key] = new Intl.DateTimeFormat("zh-CN", Object.assign({ hour12: false }, opts));
      }
    }
    return fmt[key];
  }
  W.clock = function (ms) {
    return formatter({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(ms));
  };
  W.dateTime = function (ms) {
    return formatter({ month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .format(new Date(ms));
  };
  /* "m:ss" or "h:mm:ss" for a duration in seconds. */
  W.duration = function (s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h > 0 ? h + ":" + pad(m) + ":" + pad(sec) : m + ":" + pad(sec);
  };
  W.parseTime = function (iso) {
    if (!iso) return null;
    var t = Date.parse(iso);
    return isNaN(t) ? null : t;
  };

  /* WGS-84 → GCJ-02, the formula of eviltransform (wuwang.geo.wgs84_to_gcj02);
   * tests/dashboard/test_geo_js.py compares the two. */
  var EARTH_R = 6378137.0, EE = 0.00669342162296594323, PI = Math.PI;
  function outOfChina(lat, lon) {
    return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  }
  function transform(x, y) {
    var xy = x * y, absX = Math.sqrt(Math.abs(x)), xPi = x * PI, yPi = y * PI;
    var d = 20.0 * Math.sin(6.0 * xPi) + 20.0 * Math.sin(2.0 * xPi);
    var lat = d, lon = d;
    lat += 20.0 * Math.sin(yPi) + 40.0 * Math.sin(yPi / 3.0);
    lon += 20.0 * Math.sin(xPi) + 40.0 * Math.sin(xPi / 3.0);
    lat += 160.0 * Math.sin(yPi / 12.0) + 320 * Math.sin(yPi / 30.0);
    lon += 150.0 * Math.sin(xPi / 12.0) + 300.0 * Math.sin(xPi / 30.0);
    lat *= 2.0 / 3.0;
    lon *= 2.0 / 3.0;
    lat += -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * xy + 0.2 * absX;
    lon += 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * xy + 0.1 * absX;
    return [lat, lon];
  }
  W.wgs2gcj = function (lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    var d = transform(lon - 105.0, lat - 35.0);
    var radLat = (lat / 180.0) * PI;
    var magic = Math.sin(radLat);
    magic = 1 - EE * magic * magic;
    var sqrtMagic = Math.sqrt(magic);
    var dLat = (d[0] * 180.0) / (((EARTH_R * (1 - EE)) / (magic * sqrtMagic)) * PI);
    var dLon = (d[1] * 180.0) / ((EARTH_R / sqrtMagic) * Math.cos(radLat) * PI);
    return [lat + dLat, lon + dLon];
  };
  /* [lon, lat] for GeoJSON, in the map's datum. */
  W.position = function (lat, lon, datum) {
    if (datum === "gcj02") {
      var p = W.wgs2gcj(lat, lon);
      return [Math.round(p[1] * 1e6) / 1e6, Math.round(p[0] * 1e6) / 1e6];
    }
    return [lon, lat];
  };

  /* Distance and bearing between two WGS-84 points: the formulas of wuwang.geo
   * (haversine_m, bearing_deg); tests/dashboard/test_field_geo_js.py compares them. */
  var MEAN_R = 6371008.8, RAD = PI / 180;
  W.distanceM = function (lat1, lon1, lat2, lon2) {
    var p1 = lat1 * RAD, p2 = lat2 * RAD, dp = p2 - p1, dl = (lon2 - lon1) * RAD;
    var a = Math.pow(Math.sin(dp / 2), 2) + Math.cos(p1) * Math.cos(p2) * Math.pow(Math.sin(dl / 2), 2);
    return 2 * MEAN_R * Math.asin(Math.min(1, Math.sqrt(a)));
  };
  W.bearingDeg = function (lat1, lon1, lat2, lon2) {
    var p1 = lat1 * RAD, p2 = lat2 * RAD, dl = (lon2 - lon1) * RAD;
    var y = Math.sin(dl) * Math.cos(p2);
    var x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
    return ((Math.atan2(y, x) / RAD) % 360 + 360) % 360;
  };
  /* One of the 8 compass points, as a catalogue key ("compass.ne"). */
  var COMPASS = ["n", "ne", "e", "se", "s", "sw", "w", "nw"];
  W.compassKey = function (deg) {
    return "compass." + COMPASS[Math.round((((deg % 360) + 360) % 360) / 45) % 8];
  };
  /* "1.2 km" / "850 m" in the page's language. */
  W.distanceText = function (m) {
    if (m < 1000) return W.t("unit.m", { n: Math.round(m / 10) * 10 });
    return W.t("unit.km", { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
  };
  /* A position people can read: 北纬 32.0431°，东经 112.1448° / 32.0431° N, 112.1448° E. */
  W.coordsText = function (lat, lon) {
    return W.t("geo.coords", {
      lat: W.t(lat >= 0 ? "geo.lat_n" : "geo.lat_s", { v: Math.abs(lat).toFixed(4) }),
      lon: W.t(lon >= 0 ? "geo.lon_e" : "geo.lon_w", { v: Math.abs(lon).toFixed(4) })
    });
  };

  W.setProps = function (id, props) {
    var dc = window.dash_clientside;
    if (!dc || !dc.set_props) return;
    // Not on the page (a panel drawn only once the map is up: layout/console.py, deferred;
    // a page being drawn again): Dash would throw. The panel reads its state when drawn.
    var state = window.store && window.store.getState ? window.store.getState() : null;
    if (state && state.paths && state.paths.strs && !state.paths.strs[id]) return;
    dc.set_props(id, props);
  };

  /* A component's current props, read from Dash's store (Dash has set_props but no
   * get_props): null when the component is not on the page. */
  W.getProps = function (id) {
    var state = window.store && window.store.getState ? window.store.getState() : null;
    var path = state && state.paths && state.paths.strs ? state.paths.strs[id] : null;
    if (!path) return null;
    var node = state.layout;
    for (var i = 0; node && i < path.length; i++) node = node[path[i]];
    return node && node.props ? node.props : null;
  };

  /* The wall clock in the header. */
  setInterval(function () {
    var el = document.getElementById("clock");
    if (el) el.textContent = W.clock(Date.now());
  }, 1000);
})();

/* A WebSocket to the command service's /ws that reconnects by itself (jittered
 * exponential back-off, 0.5 s … 10 s; 5 s … 60 s while the server says it cannot stream,
 * close 1013). Every (re)connection starts with a snapshot, so nothing missed while
 * away stays missing. The token never goes into the URL (access logs, proxies keep
 * URLs): it is the first message, {"type": "auth", "token": …}, and a renewed token is
 * sent the same way on the open socket (setToken). handlers: open(), message(obj),
 * close(event, willRetry), expired(). */
(function () {
  "use strict";
  var W = window.wuwang;
  var CLOSE_UNAUTHORISED = 4401, CLOSE_UNAVAILABLE = 1013;
  function Socket(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.openedAt = null;
    this.sentToken = null;  // the token this connection authenticated (or renewed) with
    this.connect();
  }
  Socket.prototype.connect = function () {
    var self = this;
    if (self.stopped) return;
    var ws;
    try {
      ws = new WebSocket(self.url);
    } catch (e) {
      self.retry(false);
      return;
    }
    self.ws = ws;
    var guard = setTimeout(function () { if (ws.readyState !== 1) ws.close(); }, 10000);
    ws.onopen = function () {
      clearTimeout(guard);
      self.sentToken = self.token;
      ws.send(JSON.stringify({ type: "auth", token: self.token }));
      if (self.h.open) self.h.open();
    };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "snapshot") self.attempt = 0;  // authenticated and served: back-off over
      self.h.message(msg);
    };
    ws.onerror = function () { /* onclose follows */ };
    ws.onclose = function (ev) {
      clearTimeout(guard);
      if (self.ws !== ws) return;
      self.ws = null;
      if (ev.code === CLOSE_UNAUTHORISED && self.token === self.sentToken) {
        // expired, revoked (logout, account disabled or changed) or forged: only a new login helps
        self.stopped = true;
        if (self.h.close) self.h.close(ev, false);
        if (self.h.expired) self.h.expired();
        return;
      }
      var again = !self.stopped;
      if (self.h.close) self.h.close(ev, again);
      if (again) self.retry(ev.code === CLOSE_UNAVAILABLE);
    };
  };
  /* A renewed token: used by this connection at once, and by every reconnection. */
  Socket.prototype.setToken = function (token) {
    if (!token || token === this.token) return;
    this.token = token;
    if (this.ws && this.ws.readyState === 1) {
      this.sentToken = token;
      try { this.ws.send(JSON.stringify({ type: "auth", token: token })); } catch (e) { /* onclose follows */ }
    }
  };
  Socket.prototype.retry = function (unavailable) {
    var self = this;
    if (self.stopped) return;
    // The server is up but cannot stream (1013): ask far less often, so a thousand
    // consoles do not knock together once a second. Full jitter spreads them out.
    var base = unavailable ? Math.min(60000, 5000 * Math.pow(2, self.attempt))
                           : Math.min(10000, 500 * Math.pow(2, self.attempt));
    self.attempt += 1;
    clearTimeout(self.timer);
    self.timer = setTimeout(function () { self.connect(); }, base * (0.5 + Math.random() * 0.5));
  };
  Socket.prototype.reconnectNow = function () {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  };
  Socket.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      var ws = this.ws;
      this.ws = null;
      try { ws.close(1000, "bye"); } catch (e) { /* closing anyway */ }
    }
  };
  Socket.prototype.isOpen = function () { return !!this.ws && this.ws.readyState === 1; };
  W.Socket = Socket;
})();
