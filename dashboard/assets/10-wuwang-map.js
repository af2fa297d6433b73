/* 五网同构 console — how map features are drawn (dash-leaflet functional props).
 * Everything is a canvas circle marker except the DOM labels (street names only in
 * view, see lazyLabel) and cluster icons, so 10,000 points stay smooth. Colours: level I–IV red/orange/yellow/blue. */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var LEVEL = { 1: "#e53935", 2: "#fb8c00", 3: "#fdd835", 4: "#1e88e5" };
  var STATUS = {
    available: "#22c55e", dispatched: "#a78bfa", en_route: "#22d3ee",
    on_scene: "#f472b6", returning: "#94a3b8", off_duty: "#475569"
  };
  /* Risk levels 重大/较大/一般/低 and shelter states: their symbols' colours. */
  var RISK_LEVEL = { major: "#d50000", large: "#ff6d00", general: "#ffd600", low: "#90a4ae" };
  var SHELTER_STATUS = { open: "#00c853", full: "#ff9100", closed: "#78909c" };
  W.colours = { level: LEVEL, status: STATUS, risk: RISK_LEVEL, shelter: SHELTER_STATUS };

  function tip(layer, html) {
    layer.bindTooltip(html, { direction: "top", offset: [0, -8], className: "map-tip" });
  }

  /* Marker sizes: 1 on the desk and the field page; on the wall the screen's height over
   * 1080 px (assets/50-wuwang-wall.js), so a 4K panel or a video wall draws them as large. */
  function k() { return W.wallScale ? W.wallScale() : 1; }

  /* zoom-lt-12 / zoom-lt-14 on a map's container, kept up to date: CSS hides the place
   * names a zoom is too far out for (hundreds of labels on a city-wide view are noise). */
  function zoomClasses(map) {
    if (!map || map._wuwangZoomClasses) { return; }
    map._wuwangZoomClasses = true;
    function update() {
      var z = map.getZoom(), el = map.getContainer();
      el.classList.toggle("zoom-lt-12", z < 12);
      el.classList.toggle("zoom-lt-14", z < 14);
      el.classList.toggle("zoom-lt-15", z < 15);
    }
    map.on("zoomend", update);
    update();
  }

  /* Labels that exist only where they are read. A layer of thousands of DivIcon markers
   * (the demo city's ~2,300 street names) costs a DOM element each even while CSS hides
   * it; instead each feature is a placeholder (no DOM) and one handler per map adds the
   * real marker of those in view (and half a screen around) at or beyond their zoom, and
   * takes off the others. Zoomed out on the city: no street name in the DOM at all. */
  var LazyLabel = null, lazySets = [];
  function lazySet(map) {
    if (map._wuwangLazy) { return map._wuwangLazy; }
    var set = (map._wuwangLazy = { labels: new Set(), pending: false, map: map });
    lazySets.push(set);
    function update() {
      set.pending = false;
      if (!map._loaded) { return; }
      var z = map.getZoom(), view = map.getBounds().pad(0.5);
      set.labels.forEach(function (label) { label.sync(map, z, view); });
    }
    set.schedule = function () {
      if (set.pending) { return; }
      set.pending = true;
      window.requestAnimationFrame(update);
    };
    map.on("move zoomend viewreset", set.schedule);
    return set;
  }
  function lazyLabel(latlng, minZoom, make) {
    if (!LazyLabel) {
      LazyLabel = window.L.Layer.extend({
        initialize: function (at, zoom, build) {
          this._latlng = at; this._minZoom = zoom; this._build = build; this._marker = null; this._shown = false;
        },
        getLatLng: function () { return this._latlng; },
        onAdd: function (map) { var set = lazySet(map); set.labels.add(this); set.schedule(); },
        onRemove: function (map) {
          lazySet(map).labels.delete(this);
          if (this._shown) { map.removeLayer(this._marker); this._shown = false; }
        },
        sync: function (map, z, view) {
          var on = z >= this._minZoom && view.contains(this._latlng);
          if (on === this._shown) { return; }
          this._shown = on;
          if (on) { map.addLayer(this._marker || (this._marker = this._build())); }
          else { map.removeLayer(this._marker); }
        }
      });
    }
    return new LazyLabel(latlng, minZoom, make);
  }
  W.lazyLabel = lazyLabel;
  /* For tests: how many labels the maps on the page hold, and how many are in the DOM. */
  W.lazyLabels = function () {
    var held = 0, shown = 0;
    lazySets.forEach(function (set) {
      if (!set.map.getContainer().isConnected) { return; }
      set.labels.forEach(function (label) { held += 1; if (label._shown) { shown += 1; } });
    });
    return { held: held, shown: shown };
  };

  /* Areas (warnings) lie in the overlay pane's canvas, under the canvases of the teams'
   * and incidents' panes, which take every click; and a district drawn later would be
   * above them in their own canvas. So the map itself answers a click: the popup of the
   * highest-ranked area under it (the console's own warnings over other agencies'),
   * never while a shape is being drawn or edited. */
  /* While a warning's area is drawn, edited or deleted, the canvases of the panes above
   * the markers' (teams, incidents) and the other markers let the clicks through to
   * leaflet-draw's own (its mouse marker, the vertices): "wuwang-drawing" on the map. */
  if (window.L && window.L.Map && window.L.Map.addInitHook) {
    window.L.Map.addInitHook(function () {
      var map = this;
      map.on("draw:drawstart draw:editstart draw:deletestart", function () {
        map.getContainer().classList.add("wuwang-drawing");
      });
      map.on("draw:drawstop draw:editstop draw:deletestop", function () {
        map.getContainer().classList.remove("wuwang-drawing");
      });
    });
  }
  /* html.Details does not tell Dash when it is opened or folded: the warning panel's
   * "open" is handed on, so a district is picked, and shown picked, only while it is open
   * (callbacks/warnings.py district_clicked, districts_highlighted). */
  document.addEventListener("toggle", function (e) {
    var el = e.target, dc = window.dash_clientside;
    if (el && el.id === "warning-panel" && dc && dc.set_props) { dc.set_props("warning-panel", { open: el.open }); }
  }, true);
  /* An area's popup kept clear of the layers control down the map's right side (Leaflet pads the
   * right with the bottom-right padding). */
  function popupOptions(kind) {
    return { className: "map-popup " + kind, maxWidth: 360, autoPanPaddingBottomRight: window.L.point(240, 20) };
  }
  function clickableArea(layer, rank) {
    layer._wuwangRank = rank;
    layer.on("add", function () {
      var map = layer._map;
      if (!map._wuwangAreas) {
        var areas = (map._wuwangAreas = new Set());
        map.on("click", function (e) {
          if (map.getContainer().classList.contains("wuwang-drawing")) { return; }
          var best = null, at = map.latLngToLayerPoint(e.latlng);
          areas.forEach(function (area) {
            if (area._map !== map) { areas.delete(area); return; }
            if (area.getPopup() && area._containsPoint(at) && (!best || area._wuwangRank > best._wuwangRank)) { best = area; }
          });
          if (best) { best.openPopup(e.latlng); }
        });
      }
      map._wuwangAreas.add(layer);
    });
  }

  W.map = {
    /* Incidents: the level's colour; one ring per age step (10 min, 30 min, 1 h). */
    incidentPoint: function (feature, latlng) {
      var p = feature.properties, L = window.L;
      var colour = LEVEL[p.l] || "#9e9e9e";
      var parts = [], s = k();
      var age = p.a || 0;  // minutes since the first alarm
      var rings = age >= 60 ? 3 : age >= 30 ? 2 : age >= 10 ? 1 : 0;
      for (var r = rings; r >= 1; r--) {
        parts.push(L.circleMarker(latlng, {
          radius: (11 + r * 5) * s, color: colour, weight: 2 * s, opacity: 0.9 - r * 0.2, fill: false, pane: "incidents"
        }));
      }
      parts.push(L.circleMarker(latlng, {
        radius: (p.sel ? 11 : 9) * s, color: p.sel ? "#ffffff" : "#0b1220", weight: (p.sel ? 4 : 2) * s,
        fillColor: colour, fillOpacity: 1, pane: "incidents"
      }));
      return L.featureGroup(parts);
    },
    onEachIncident: function (feature, layer) {
      var p = feature.properties;
      tip(layer, "<b>" + W.escape(p.t) + "</b><br>" + W.escape(p.i) + " · " + W.escape(W.t("state." + p.s)));
      layer.on("click", function () { if (W.live) W.live.select(p.i); });
    },
    /* 预警: a warning's area in its level's standard colour (蓝/黄/橙/红), the border
     * solid, the fill a tint so what lies beneath stays readable. */
    /* A district clicked while the warning form is open: its canvas lies under the
     * markers' panes, which take every click, so the map hit-tests the districts itself
     * and hands the one under the click to the console, which adds it to the area or
     * takes it out (callbacks/warnings.py district_clicked). Not while drawing. */
    onEachDistrict: function (feature, layer) {
      layer.on("add", function () {
        var map = layer._map;
        if (!map._wuwangDistricts) {
          var districts = (map._wuwangDistricts = new Set());
          map.on("click", function (e) {
            var dc = window.dash_clientside;
            if (map.getContainer().classList.contains("wuwang-drawing")) { return; }
            if (!document.querySelector("#warning-panel[open]") || !dc || !dc.set_props) { return; }
            var at = map.latLngToLayerPoint(e.latlng), hit = null;
            districts.forEach(function (d) {
              if (d._map !== map) { districts.delete(d); return; }
              if (!hit && d._containsPoint(at)) { hit = d; }
            });
            if (hit) {
              W._districtClicks = (W._districtClicks || 0) + 1;
              dc.set_props("layer-districts", { clickData: hit.feature, n_clicks: W._districtClicks });
            }
          });
        }
        map._wuwangDistricts.add(layer);
      });
    },
    warningStyle: function (feature) {
      var c = (feature.properties || {}).colour || "#ffd700";
      return { color: c, weight: 3 * k(), opacity: 0.95, dashArray: null, fill: true, fillColor: c, fillOpacity: 0.18 };
    },
    onEachWarning: function (feature, layer) {
      var p = feature.properties || {};
      tip(layer, p.html || "");
      layer.bindPopup(p.html || "", popupOptions("warning-popup"));
      clickableArea(layer, 2);
      // the areas on the map by warning (canvas paths have no DOM to look at): identifier → level
      W.map.warningAreas = W.map.warningAreas || {};
      W.map.warningAreas[p.i] = p.level;
    },
    /* 外部预警: CAP from another agency — the level's colour (grey without one), the
     * border dashed so it is never taken for one of ours; a click opens who sent it,
     * the headline, onset and expiry (drawn on the server, escaped). */
    inboundWarningStyle: function (feature) {
      var c = (feature.properties || {}).colour || "#9e9e9e";
      var s = k();  // as thick on a 4K wall as on the desk
      return { color: c, weight: 2.5 * s, opacity: 0.95, dashArray: 10 * s + " " + 6 * s, fill: true, fillColor: c, fillOpacity: 0.1 };
    },
    onEachInboundWarning: function (feature, layer) {
      var p = feature.properties || {};
      layer.bindPopup(p.html || "", popupOptions("inbound-popup"));
      tip(layer, p.tip || "");
      clickableArea(layer, 1);
      W.map.inboundAreas = W.map.inboundAreas || {};
      W.map.inboundAreas[p.i] = p.level || "none";
    },
    teamPoint: function (feature, latlng) {
      var p = feature.properties;
      return window.L.circleMarker(latlng, {
        radius: 6 * k(), color: "#0b1220", weight: 1.5 * k(), fillColor: STATUS[p.s] || "#9e9e9e", fillOpacity: 1, pane: "teams"
      });
    },
    onEachTeam: function (feature, layer) {
      var p = feature.properties;
      tip(layer, "<b>" + W.escape(p.n || p.i) + "</b><br>" + W.escape(p.i) + " · " + W.escape(W.t("team_status." + p.s)));
    },
    networkPoint: function (feature, latlng, context) {
      return window.L.circleMarker(latlng, {
        radius: 4, weight: 1, color: "#0b1220", fillColor: context.hideout.colour, fillOpacity: 0.9
      });
    },
    clusterIcon: function (feature, latlng, index, context) {
      var n = feature.properties.point_count;
      var size = n < 50 ? 30 : n < 500 ? 38 : 46;
      var icon = window.L.divIcon({
        html: '<div style="background:' + context.hideout.colour + '"><span>' +
          feature.properties.point_count_abbreviated + "</span></div>",
        className: "net-cluster", iconSize: window.L.point(size, size)
      });
      return window.L.marker(latlng, { icon: icon });
    },
    /* Heat: weighted discs in a blurred pane ("heat", see console.css). */
    heatPoint: function (feature, latlng) {
      var r = feature.properties.r || 0;
      var colour = r > 0.66 ? "#ff1744" : r > 0.33 ? "#ff9100" : "#ffea00";
      return window.L.circleMarker(latlng, {
        radius: 10 + 26 * Math.sqrt(r), stroke: false, fillColor: colour, fillOpacity: 0.25 + 0.45 * r,
        pane: "heat", interactive: false
      });
    },
    warehousePoint: function (feature, latlng) {
      var p = feature.properties;
      var m = window.L.circleMarker(latlng, {
        radius: 7, color: p.low ? "#e53935" : "#e0e0e0", weight: p.low ? 3 : 1.5,
        fillColor: "#8d6e63", fillOpacity: 1, pane: "warehouses"
      });
      if (p.html) tip(m, p.html);
      return m;
    },
    /* Risk sources (风险源): a diamond by level (重大 red … 低 grey), a white ring when
     * the inspection is overdue. */
    riskPoint: function (feature, latlng) {
      var p = feature.properties, s = k();
      var colour = RISK_LEVEL[p.l] || "#9e9e9e";
      var m = window.L.marker(latlng, {
        pane: "risk",
        icon: window.L.divIcon({
          className: "risk-source" + (p.o ? " overdue" : ""),
          html: '<div style="background:' + colour + ";width:" + 12 * s + "px;height:" + 12 * s + 'px"></div>',
          iconSize: window.L.point(14 * s, 14 * s)
        })
      });
      if (p.html) tip(m, p.html);
      return m;
    },
    /* Shelters (应急避难场所): a square by status (open green, full orange, closed grey),
     * filled in proportion to the room left. */
    shelterPoint: function (feature, latlng) {
      var p = feature.properties, s = k();
      var colour = SHELTER_STATUS[p.s] || "#9e9e9e";
      var fill = Math.round(100 * Math.max(0, Math.min(1, p.f || 0)));
      var m = window.L.marker(latlng, {
        pane: "risk",
        icon: window.L.divIcon({
          className: "shelter shelter-" + p.s,
          html: '<div style="border-color:' + colour + ";width:" + 14 * s + "px;height:" + 14 * s +
            "px;background:linear-gradient(to top," + colour + " " + fill + "%,rgba(11,18,32,0.85) " + fill + '%)"></div>',
          iconSize: window.L.point(18 * s, 18 * s)
        })
      });
      if (p.html) tip(m, p.html);
      return m;
    },
    labelPoint: function (feature, latlng) {
      return window.L.marker(latlng, {
        interactive: false, keyboard: false,
        icon: window.L.divIcon({ className: "district-label", html: W.escape(feature.properties.n), iconSize: null })
      });
    },
    placePoint: function (feature, latlng) {
      // A named place: a dot and its name. Landmarks show from zoom 12, the rest from 14,
      // only those in view (lazyLabel).
      var p = feature.properties;
      return lazyLabel(latlng, p.m ? 12 : 14, function () {
        var marker = window.L.marker(latlng, {
          interactive: false, keyboard: false,
          icon: window.L.divIcon({
            className: "place-label" + (p.m ? " landmark" : ""),
            html: '<i></i><span>' + W.escape(p.n) + "</span>", iconSize: null
          })
        });
        marker.on("add", function () { zoomClasses(marker._map); });
        return marker;
      });
    },
    streetLabel: function (feature, latlng) {
      // A road's name mid-block, along the road: across on east–west roads, down on
      // north–south ones; one block in four from zoom 14 (a block is then ~75 px),
      // every block from 15; only those in view are in the DOM (lazyLabel).
      var p = feature.properties;
      return lazyLabel(latlng, p.s ? 14 : 15, function () {
        var marker = window.L.marker(latlng, {
          interactive: false, keyboard: false,
          icon: window.L.divIcon({
            className: "street-label " + (p.a === "ns" ? "ns" : "ew") + (p.s ? " sparse" : ""),
            html: "<span>" + W.escape(p.n) + "</span>", iconSize: null
          })
        });
        marker.on("add", function () { zoomClasses(marker._map); });
        return marker;
      });
    },
    orderPoint: function (feature, latlng) {
      var p = feature.properties;
      return window.L.circleMarker(latlng, {
        radius: 11, color: "#ffffff", weight: 3, fillColor: LEVEL[p.l] || "#e53935", fillOpacity: 1
      });
    },
    /* The field page: the team's own position and the line from it to the scene. */
    herePoint: function (feature, latlng) {
      return window.L.circleMarker(latlng, {
        radius: 8, color: "#ffffff", weight: 3, fillColor: "#22d3ee", fillOpacity: 1, interactive: false
      });
    },
    routeStyle: function (feature) {
      if (feature && feature.properties.here) {  // GeoJSON styles its points too
        return { color: "#ffffff", weight: 3, opacity: 1, fillColor: "#22d3ee", fillOpacity: 1, dashArray: null };
      }
      return { color: "#22d3ee", weight: 4, opacity: 0.95, dashArray: "8 6" };
    },
    districtStyle: function (feature, context) {
      // Over a basemap the fill is a tint only, so the streets beneath stay visible.
      var onBasemap = context && context.hideout && context.hideout.basemap;
      var picked = (context && context.hideout && context.hideout.picked) || [];
      if (feature && feature.properties && picked.indexOf(feature.properties.i) >= 0) {
        // in the area of the warning being drafted (callbacks/warnings.py districts_hideout)
        return { color: "#ffb300", weight: 3, opacity: 1, fill: true, fillColor: "#ffb300", fillOpacity: 0.3 };
      }
      return {
        color: "#6f8fbf", weight: onBasemap ? 1.5 : 2, opacity: onBasemap ? 0.7 : 0.9,
        fill: true, fillColor: "#13213a", fillOpacity: onBasemap ? 0.12 : 0.55
      };
    },
    gridStyle: function () {
      return { color: "#3b5278", weight: 0.6, opacity: 0.7, fill: false };
    },
    riverStyle: function () {
      return { color: "#2f80c8", weight: 5, opacity: 0.85 };
    },
    streetStyle: function () {
      return { color: "#56657f", weight: 1.2, opacity: 0.8 };
    }
  };

  /* The map up first, the desk's panels after it (layout/console.py, deferred): once
   * every file of the first draw has been drawn — a drawing function called with that
   * layer's context (dash-leaflet hands each function the layer's props, its url among
   * them) — and the frame is on screen, "map-up" is set and the inbox and side tabs are
   * asked for (callbacks/auth.py). An empty file draws nothing and is not waited for;
   * UP_AT_LATEST_MS after the files are in (a layer switched off meanwhile never draws)
   * they are asked for whatever the map did. */
  var UP_AT_LATEST_MS = 10000;
  var up = { want: [], drawn: {}, done: true, timer: null };
  function mapUp() {
    if (up.done) { return; }
    up.done = true;
    clearTimeout(up.timer);
    var page = up;
    // two frames: the one the last layer was drawn in is painted first
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () { askPanels(page, 0); });
    });
  }
  function askPanels(page, tries) {
    W.setProps("map-up", { data: Date.now() });
    // nothing drawn (the command service did not say who this is in time): ask again
    setTimeout(function () {
      var slot = W.getProps("side-slot");
      if (page === up && slot && !slot.children && tries < 12) { askPanels(page, tries + 1); }
    }, 5000);
  }
  function checkUp() {
    if (!up.done && up.want.every(function (url) { return up.drawn[url]; })) { mapUp(); }
  }
  function noteDrawn(context) {
    var url = context && context.url;
    if (url && !up.drawn[url]) { up.drawn[url] = true; checkUp(); }
  }
  Object.keys(W.map).forEach(function (name) {
    var draw = W.map[name];
    W.map[name] = function () {
      noteDrawn(arguments[arguments.length - 1]);  // the context comes last
      return draw.apply(this, arguments);
    };
  });

  /* The static layers' files of the first draw (layout/map.py, first_files): asked for
   * as soon as the page arrives, while the panels' first callbacks are still running;
   * dash-leaflet asks for the same URLs once its layers mount and gets them from the
   * browser's cache (they are sent with max-age), or joins the request in flight. */
  var cs = (window.dash_clientside = window.dash_clientside || {});
  cs.wuwang = Object.assign({}, cs.wuwang, {
    prefetchFiles: function (urls) {
      // a new page: its map is waited for afresh
      clearTimeout(up.timer);
      up = { want: (urls || []).slice(), drawn: {}, done: false, timer: null };
      var page = up;
      Promise.all((urls || []).map(function (url) {
        // read to the end: an unread body would stop the download (and the cache entry) half-way
        return window.fetch(url, { credentials: "same-origin" })
          .then(function (response) { return response.arrayBuffer(); })
          .then(function (body) {
            // nothing to draw (no features): nothing to wait for
            if (body.byteLength < 200 && /"features":\s*\[\s*\]/.test(new TextDecoder().decode(body))) {
              page.drawn[url] = true;
              if (page === up) { checkUp(); }
            }
          })
          .catch(function () { /* dash-leaflet asks again itself */ });
      })).then(function () {
        if (page === up && !page.done) { page.timer = setTimeout(mapUp, UP_AT_LATEST_MS); }
      });
      checkUp();
      return cs.no_update;
    }
  });

  /* The drawing tools (leaflet-draw inside dash-leaflet's EditControl) speak English; their
   * words are read from L.drawLocal each time a button or tip is made, so L.drawLocal
   * answers from the page's catalogue (drawtool.* keys), whatever the bundle set it to. */
  var DRAW_WORDS = [
    ["draw.toolbar.actions.title", "drawtool.cancel_title"], ["draw.toolbar.actions.text", "drawtool.cancel"],
    ["draw.toolbar.finish.title", "drawtool.finish_title"], ["draw.toolbar.finish.text", "drawtool.finish"],
    ["draw.toolbar.undo.title", "drawtool.undo_title"], ["draw.toolbar.undo.text", "drawtool.undo"],
    ["draw.toolbar.buttons.polygon", "drawtool.polygon"], ["draw.toolbar.buttons.rectangle", "drawtool.rectangle"],
    ["draw.handlers.polygon.tooltip.start", "drawtool.polygon_start"],
    ["draw.handlers.polygon.tooltip.cont", "drawtool.polygon_cont"],
    ["draw.handlers.polygon.tooltip.end", "drawtool.polygon_end"],
    ["draw.handlers.polyline.error", "drawtool.crossing"],
    ["draw.handlers.rectangle.tooltip.start", "drawtool.rectangle_start"],
    ["draw.handlers.simpleshape.tooltip.end", "drawtool.release"],
    ["edit.toolbar.actions.save.title", "drawtool.save_title"], ["edit.toolbar.actions.save.text", "drawtool.save"],
    ["edit.toolbar.actions.cancel.title", "drawtool.undo_edit_title"], ["edit.toolbar.actions.cancel.text", "drawtool.cancel"],
    ["edit.toolbar.actions.clearAll.title", "drawtool.clear_title"], ["edit.toolbar.actions.clearAll.text", "drawtool.clear"],
    ["edit.toolbar.buttons.edit", "drawtool.edit"], ["edit.toolbar.buttons.editDisabled", "drawtool.edit_none"],
    ["edit.toolbar.buttons.remove", "drawtool.remove"], ["edit.toolbar.buttons.removeDisabled", "drawtool.remove_none"],
    ["edit.handlers.edit.tooltip.text", "drawtool.edit_tip"], ["edit.handlers.edit.tooltip.subtext", "drawtool.edit_subtip"],
    ["edit.handlers.remove.tooltip.text", "drawtool.remove_tip"]
  ];
  function localDraw(base) {
    var out = JSON.parse(JSON.stringify(base || {}));
    DRAW_WORDS.forEach(function (pair) {
      var path = pair[0].split("."), at = out;
      for (var i = 0; i < path.length - 1; i++) { at = at[path[i]] = at[path[i]] || {}; }
      var text = W.t(pair[1]);
      if (text !== pair[1]) { at[path[path.length - 1]] = text; }
    });
    return out;
  }
  function hookDrawWords() {
    var L = window.L;
    if (!L || L._wuwangDrawWords) { return; }
    L._wuwangDrawWords = true;
    var base = L.drawLocal;
    Object.defineProperty(L, "drawLocal", {
      configurable: true,
      get: function () { return localDraw(base); },
      set: function (value) { base = value; }
    });
  }
  hookDrawWords();
  document.addEventListener("DOMContentLoaded", hookDrawWords);
})();
