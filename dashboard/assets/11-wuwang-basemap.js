/* 五网同构 console — a vector-tile basemap (DASHBOARD_TILE_KIND=vector, or a tile URL
 * ending in .pbf/.mvt; dashboard/tiles.py).
 *
 * The server draws a stand-in tile layer with the class "basemap-vector", so the map
 * adds and removes it like any basemap (its attribution line too). Here the stand-in
 * fetches nothing; while it is on a map, a Leaflet.VectorGrid protobuf layer of the same
 * URL draws the tiles on canvas beneath it. The library (vendored, unchanged, in
 * assets/vendor/leaflet.vectorgrid-1.3.0/) is loaded on first use only: a raster or
 * no basemap never loads it. Positions on a GCJ-02 service are shifted as on raster
 * tiles (DASHBOARD_TILE_DATUM); nothing here knows the datum. */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var L = window.L;
  if (!L || !L.TileLayer || !L.TileLayer.addInitHook) { return; }
  var CLASS = "basemap-vector";
  var LIB = "vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js";
  var HERE = (document.currentScript && document.currentScript.src) || window.location.origin + "/assets/";

  /* The console's dark palette for the layer names of the two common schemas
   * (OpenMapTiles, Protomaps basemaps); labels and points of interest are left out
   * (the map has its own names), any other layer is a thin grey line. */
  var AREA = { stroke: false, fill: true, fillOpacity: 1 };
  var STYLES = {
    water: L.extend({}, AREA, { fillColor: "#17324f" }),
    waterway: { color: "#2f80c8", weight: 1.5, opacity: 0.9 },
    landcover: L.extend({}, AREA, { fillColor: "#13213a", fillOpacity: 0.6 }),
    landuse: L.extend({}, AREA, { fillColor: "#15233b", fillOpacity: 0.6 }),
    park: L.extend({}, AREA, { fillColor: "#14291f", fillOpacity: 0.6 }),
    natural: L.extend({}, AREA, { fillColor: "#14291f", fillOpacity: 0.5 }),
    earth: L.extend({}, AREA, { fillColor: "#0f1a2c" }),
    building: L.extend({}, AREA, { fillColor: "#1f2c42", fillOpacity: 0.8 }),
    buildings: L.extend({}, AREA, { fillColor: "#1f2c42", fillOpacity: 0.8 }),
    transportation: { color: "#56657f", weight: 1.2, opacity: 0.9 },
    roads: { color: "#56657f", weight: 1.2, opacity: 0.9 },
    boundary: { color: "#6f8fbf", weight: 1, opacity: 0.7, dashArray: "4 3" },
    boundaries: { color: "#6f8fbf", weight: 1, opacity: 0.7, dashArray: "4 3" }
  };
  var HIDDEN = ["place", "places", "poi", "pois", "transportation_name", "housenumber",
    "water_name", "mountain_peak", "aerodrome_label", "physical_point", "physical_line"];
  HIDDEN.forEach(function (name) { STYLES[name] = []; });
  var OTHER = { color: "#3d4b63", weight: 0.8, opacity: 0.8, fill: false, radius: 0 };
  var styles = new Proxy(STYLES, {
    get: function (known, name) { return Object.prototype.hasOwnProperty.call(known, name) ? known[name] : OTHER; }
  });

  var waiting = null;
  function withLibrary(done) {
    if (L.vectorGrid) { done(); return; }
    if (waiting) { waiting.push(done); return; }
    waiting = [done];
    var script = document.createElement("script");
    script.src = new URL(LIB, HERE).href;
    script.onload = function () {
      var queue = waiting; waiting = null;
      queue.forEach(function (fn) { fn(); });
    };
    script.onerror = function () { waiting = null; console.warn("vector tiles: the library did not load"); };
    document.head.appendChild(script);
  }

  function vectorLayer(stand) {
    var o = stand.options;
    return L.vectorGrid.protobuf(stand._url, {
      vectorTileLayerStyles: styles,
      rendererFactory: L.canvas.tile,
      interactive: false,
      maxZoom: o.maxZoom,
      maxNativeZoom: o.maxNativeZoom,
      minZoom: o.minZoom,
      bounds: o.bounds,
      pane: o.pane,
      className: CLASS + "-tiles",
      subdomains: o.subdomains
    });
  }

  L.TileLayer.addInitHook(function () {
    if ((" " + (this.options.className || "") + " ").indexOf(" " + CLASS + " ") < 0) { return; }
    var stand = this, drawn = null, map = null;
    // the stand-in's own tiles: empty, nothing requested
    this.createTile = function () { return document.createElement("div"); };
    this.on("add", function () {
      map = stand._map;
      withLibrary(function () {
        if (!map || drawn || !map.hasLayer(stand)) { return; }
        drawn = vectorLayer(stand);
        map.addLayer(drawn);
        drawn.bringToBack();
      });
    });
    this.on("remove", function () {
      if (drawn && map) { map.removeLayer(drawn); }
      drawn = null; map = null;
    });
  });

  W.basemap = {
    /* for tests: the vector tiles drawn so far on the page's maps */
    vectorTiles: function () {
      return document.querySelectorAll("." + CLASS + "-tiles canvas, canvas." + CLASS + "-tiles").length;
    }
  };
})();
