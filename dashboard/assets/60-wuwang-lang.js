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
    [".leaflet-control-layers-toggle", "leaflet.layers"],
    // the drawing tools of the warning form (leaflet-draw): made once in the language of
    // their first drawing, said again here when the language changes
    [".leaflet-draw-draw-polygon", "drawtool.polygon"],
    [".leaflet-draw-draw-rectangle", "drawtool.rectangle"],
    [".leaflet-draw-edit-edit", "drawtool.edit", "drawtool.edit_none"],
    [".leaflet-draw-edit-remove", "drawtool.remove", "drawtool.remove_none"]
  ];

  function localise() {
    if (!W.catalogue || !W.t) return;
    var tag = W.t("app.lang_tag");
    if (tag && tag !== "app.lang_tag" && document.documentElement.lang !== tag) document.documentElement.lang = tag;
    CONTROLS.forEach(function (pair) {
      var els = document.querySelectorAll(pair[0]);
      for (var i = 0; i < els.length; i++) {
        // a disabled tool says why (nothing to edit), as leaflet-draw's own title does
        var off = pair[2] && els[i].classList.contains("leaflet-disabled");
        var text = W.t(off ? pair[2] : pair[1]);
        if (els[i].getAttribute("title") !== text) els[i].setAttribute("title", text);
        if (els[i].getAttribute("aria-label") !== text) els[i].setAttribute("aria-label", text);
        var spoken = els[i].querySelector(".sr-only");  // leaflet-draw's words for screen readers
        if (spoken && spoken.textContent !== text) spoken.textContent = text;
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
