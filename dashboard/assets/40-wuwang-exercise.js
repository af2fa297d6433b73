/* 五网同构 console — exercise mode (演练模式) in the browser.
 *
 * - The scope of the live picture (which exercise, or live only) is set by the server
 *   in the exercise-scope store; it is handed to the live state (20-wuwang-live.js).
 * - The exercises panel's small clientside parts: showing the panel (and its 1 s
 *   refresh only while it is open), the start form's rows, the seek label.
 * - After-action report links (data-report): the session's token goes in a header to
 *   get a one-time ticket for that report (never the token in a URL); the report then
 *   opens in a new tab (HTML) or is saved as a file. The dashboard's /report/* routes
 *   pass the command service's report on (dashboard/report_proxy.py).
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});

  function hms(seconds) {
    var s = Math.max(0, Math.round(Number(seconds) || 0));
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return pad(Math.floor(s / 3600)) + ":" + pad(Math.floor((s % 3600) / 60)) + ":" + pad(s % 60);
  }

  function token() {
    if (W.live && W.live.token) return W.live.token;
    try {
      var raw = window.sessionStorage.getItem("session");
      var session = raw ? JSON.parse(raw) : null;
      return session && session.token ? session.token : null;
    } catch (e) {
      return null;
    }
  }

  function say(text, bad) {
    var box = document.getElementById("exercise-feedback") || document.getElementById("feedback");
    if (!box) return;
    box.textContent = text;
    box.className = "feedback" + (bad ? " error" : "");
  }

  /* Open or save a report. The token goes in a header to POST /report/ticket, which
   * answers with the report's URL carrying a one-time, 60-second ticket for that one
   * report; the new tab (opened at once, inside the click, so no popup blocker
   * objects) or the download then goes there. */
  W.openReport = function (href, mode) {
    var tok = token();
    if (!tok) { say(W.t("error.expired"), true); return Promise.resolve(null); }
    var tab = null;
    if (mode === "open") {
      tab = window.open("", "_blank");
      if (tab) {
        try { tab.document.title = W.t("report.loading"); tab.document.body.textContent = W.t("report.loading"); }
        catch (e) { /* a browser that does not allow it: the report still comes */ }
      }
    }
    return fetch("/report/ticket", {
      method: "POST",
      headers: { Authorization: "Bearer " + tok, "Content-Type": "application/json" },
      body: JSON.stringify({ path: href }),
      cache: "no-store",
      credentials: "omit"
    })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (!r.ok || !body.url) {
            throw new Error(W.t("report.failed", { status: r.status, detail: String(body.detail || "").slice(0, 200) }));
          }
          var url = new URL(body.url, window.location.origin).href;
          if (mode === "open") {
            if (tab) tab.location.href = url;
            else window.open(url, "_blank");
          } else {
            var a = document.createElement("a");
            a.href = url;
            a.download = "";
            document.body.appendChild(a);
            a.click();
            a.remove();
          }
          return url;
        });
      })
      .catch(function (err) {
        if (tab) tab.close();
        say(err.message || String(err), true);
        return null;
      });
  };

  document.addEventListener("click", function (ev) {
    var el = ev.target && ev.target.closest ? ev.target.closest("[data-report]") : null;
    if (!el) return;
    ev.preventDefault();
    ev.stopPropagation();
    W.openReport(el.getAttribute("data-report"), el.getAttribute("data-report-mode") || "open");
  }, true);

  var cs = (window.dash_clientside = window.dash_clientside || {});
  cs.wuwang = Object.assign({}, cs.wuwang, {
    applyExerciseScope: function (scope) {
      if (W.live && W.live.setScope) W.live.setScope(scope);
      return scope ? (scope.mode + ":" + (scope.id || "")) : "live:";
    },
    exercisePanel: function (tab) {
      var open = tab === "exercises";
      return [open ? {} : { display: "none" }, !open];
    },
    exerciseForm: function (kind) {
      return kind === "replay" ? [{ display: "none" }, {}] : [{}, { display: "none" }];
    },
    exerciseSeekLabel: function (seconds) {
      return "→ +" + hms(seconds);
    }
  });
})();
