/* 五网同构 console — the words the page's libraries bring along, in the console's
 * language: Leaflet's zoom and layer buttons say "Zoom in", "Layers" whatever the page
 * speaks. They are set again from the catalogue (W.t) whenever a map is drawn, and the
 * document's lang follows the catalogue (screen readers, fonts, hyphenation). */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var CONTROLS = [
    [".leaflet-control-zoom-in", "leaflet.zoom_in"],
    [".leaflet-control-zoom-out", "leaflet.zoom_out"],
    [".leaflet-control-layers-toggle", "leaflet.layers"]
  ];

  function localise() {
    if (!W.catalogue || !W.t) return;
    var tag = W.t("app.lang_tag");
    if (tag && tag !== "app.lang_tag" && document.documentElement.lang !== tag) document.documentElement.lang = tag;
    CONTROLS.forEach(function (pair) {
      var text = W.t(pair[1]);
      var els = document.querySelectorAll(pair[0]);
      for (var i = 0; i < els.length; i++) {
        if (els[i].getAttribute("title") !== text) els[i].setAttribute("title", text);
        if (els[i].getAttribute("aria-label") !== text) els[i].setAttribute("aria-label", text);
      }
    });
  }
  W.localise = localise;

  var pending = false;
  function soon() {
    if (pending) return;
    pending = true;
    setTimeout(function () { pending = false; localise(); }, 200);
  }
  function watch() {
    // Only added nodes matter (a new map, a redrawn page); attribute changes are ours.
    new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) if (records[i].addedNodes.length) { soon(); return; }
    }).observe(document.body, { childList: true, subtree: true });
    soon();
  }
  if (document.body) watch();
  else document.addEventListener("DOMContentLoaded", watch);
})();
