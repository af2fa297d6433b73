/* 五网同构 desk — the scene photos of field reports (dashboard/layout/photos.py).
 *
 * An <img data-photo="/desk/photos/<incident>/<name>"> cannot carry the user's token,
 * so each is fetched here with the Authorization header and shown as a blob (the page's
 * CSP allows blob: images). A photo is fetched once per page (the detail is drawn again
 * on every change). A click on a thumbnail shows it large; a click or Esc closes it.
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var photos = (W.photos = W.photos || {});
  var loaded = {};  // path -> Promise of a blob URL

  function token() {
    if (W.live && W.live.token) return W.live.token;
    return W.field && W.field.session ? W.field.session.token : null;
  }

  function blobUrl(path) {
    if (!loaded[path]) {
      loaded[path] = fetch(path, { headers: { "Authorization": "Bearer " + token() }, cache: "no-store" })
        .then(function (res) {
          if (!res.ok) throw new Error("photo " + res.status);
          return res.blob();
        })
        .then(function (blob) { return URL.createObjectURL(blob); });
      loaded[path].catch(function () { delete loaded[path]; });  // try again on the next drawing
    }
    return loaded[path];
  }

  function fill(img) {
    var path = img.getAttribute("data-photo");
    if (!path || img.getAttribute("data-shown") === path) return;
    img.setAttribute("data-shown", path);
    blobUrl(path).then(function (url) { img.src = url; img.classList.remove("photo-failed"); }, function () {
      img.classList.add("photo-failed");
      img.title = W.t("photo.unavailable");
    });
  }

  function scan(root) {
    var found = (root.querySelectorAll ? root : document).querySelectorAll("img[data-photo]");
    for (var i = 0; i < found.length; i++) fill(found[i]);
  }

  photos.close = function () {
    var open = document.getElementById("photo-viewer");
    if (open) open.parentNode.removeChild(open);
  };

  photos.open = function (path, alt) {
    photos.close();
    var viewer = document.createElement("div");
    viewer.id = "photo-viewer";
    viewer.className = "photo-viewer";
    viewer.setAttribute("role", "dialog");
    viewer.title = W.t("photo.close");
    var big = document.createElement("img");
    big.alt = alt || "";
    viewer.appendChild(big);
    viewer.addEventListener("click", photos.close);
    document.body.appendChild(viewer);
    blobUrl(path).then(function (url) { big.src = url; }, function () { big.alt = W.t("photo.unavailable"); });
  };

  document.addEventListener("click", function (ev) {
    var thumb = ev.target && ev.target.closest ? ev.target.closest(".photo-thumb") : null;
    var img = thumb ? thumb.querySelector("img[data-photo]") : null;
    if (img) photos.open(img.getAttribute("data-photo"), img.alt);
  });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") photos.close(); });

  function start() {
    scan(document);
    new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) {
        for (var j = 0; j < records[i].addedNodes.length; j++) {
          var node = records[i].addedNodes[j];
          if (node.nodeType !== 1) continue;
          if (node.matches && node.matches("img[data-photo]")) fill(node);
          else scan(node);
        }
        if (records[i].type === "attributes" && records[i].target.matches("img[data-photo]")) fill(records[i].target);
      }
    }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ["data-photo"] });
  }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
