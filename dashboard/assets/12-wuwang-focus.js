/* 五网同构 console — the desk's map follows the open incident.
 *
 * Opening an incident flies the map to it (never zooming out an operator who is closer
 * already); closing the detail (✕) or the incident being closed flies back to the view
 * the operator had before the first one was opened. Moving from one incident to the
 * next keeps that first view, so "back" is where the operator was working. Driven by
 * the detail's meta store (callbacks/incident.py: {id, is_open, lat, lon}). */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var FOCUS_ZOOM = 14, DURATION_S = 0.6;
  var maps = [];
  if (window.L && window.L.Map && window.L.Map.addInitHook) {
    window.L.Map.addInitHook(function () { maps.push(this); });
  }
  function shownMap(view) {
    for (var i = maps.length - 1; i >= 0; i--) {
      var box = maps[i].getContainer();
      if (box && box.isConnected && box.closest(".console." + view)) return maps[i];
    }
    return null;
  }
  function deskMap() { return shownMap("desk"); }
  var saved = null;    // {map, center, zoom}: the view before the first incident was opened
  var focused = null;  // the incident the map is on
  var held = null;     // drawn again after a language switch: the kept view stays, no flight

  W.shownMap = shownMap;  // the desk's or the wall's Leaflet map (tests place drawn points with it)
  W.focus = {
    to: function (id, lat, lon) {
      var m = deskMap();
      if (!m || id === focused) return false;  // drawn again for the same incident: leave the operator's pan
      if (id === held) { held = null; focused = id; saved = null; return false; }
      if (!saved || saved.map !== m) saved = { map: m, center: m.getCenter(), zoom: m.getZoom() };
      focused = id;
      var datum = W.live && W.live.cfg ? W.live.cfg.datum : "wgs84";
      var p = W.position(lat, lon, datum);  // [lon, lat]
      m.flyTo([p[1], p[0]], Math.max(m.getZoom(), FOCUS_ZOOM), { duration: DURATION_S });
      return true;
    },
    back: function () {
      var m = deskMap();
      focused = null;
      if (!m || !saved || saved.map !== m) { saved = null; return false; }
      m.flyTo(saved.center, saved.zoom, { duration: DURATION_S });
      saved = null;
      return true;
    },
    /* The language switch keeps the open incident and the map's view (live.kept). */
    hold: function (id) { held = id; },
    focused: function () { return focused; },
    view: function () {  // for tests: where the desk's map is
      var m = deskMap();
      if (!m) return null;
      var c = m.getCenter();
      return { lat: c.lat, lon: c.lng, zoom: m.getZoom() };
    }
  };

  var cs = (window.dash_clientside = window.dash_clientside || {});
  cs.wuwang = Object.assign({}, cs.wuwang, {
    /* The detail drew an incident (meta) or nothing (null). */
    focusIncident: function (meta) {
      if (meta && meta.is_open && meta.lat !== null && meta.lat !== undefined) {
        W.focus.to(meta.id, meta.lat, meta.lon);
        return meta.id;
      }
      W.focus.back();
      return null;
    },
    /* The detail's ✕: nothing selected (the queue's highlight goes too). */
    closeDetail: function (clicks) {
      if (!(clicks || []).some(function (n) { return n > 0; })) return cs.no_update;
      if (W.live) W.live.select(null);
      return null;
    }
  });
})();
