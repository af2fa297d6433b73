/* 五网同构 console — the queue's announcements (desk only).
 *
 * A new incident, a level raise and an order not acknowledged within the command
 * service's timeout (its `ack_overdue` alert) are announced: the row flashes until the
 * operator acknowledges it (opens the incident, or its 知道了 button), and a tone sounds.
 *
 * The tone is made here with WebAudio (no sound file, nothing downloaded). Browsers play
 * sound only after the user has touched the page, so the operator enables it once per
 * session with the queue's button (remembered in sessionStorage: after a reload the
 * first click anywhere wakes it again); the mute toggle is kept per desk (localStorage).
 * The state is shown on <html data-sound data-mute>, which React never redraws.
 */
(function () {
  "use strict";
  var W = (window.wuwang = window.wuwang || {});
  var SOUND_KEY = "wuwang.queue.sound", MUTE_KEY = "wuwang.queue.mute";
  var MIN_GAP_MS = 1500;  // a burst of incidents is one tone, every row still flashes
  // Tones (Hz) per reason: a level raise and a late acknowledgement sound graver than news.
  var TONES = { "new": [880, 660], raised: [660, 880, 1100], overdue: [440, 440, 440] };

  var a = (W.announce = {
    pending: new Map(),  // incident id → "new" | "raised" | "overdue", until acknowledged
    stats: { played: 0, last: null },
    ctx: null
  });

  function storage(name) {
    try { return window[name] || null; } catch (e) { return null; }  // storage may be blocked
  }
  function wanted() { var s = storage("sessionStorage"); return !!(s && s.getItem(SOUND_KEY) === "1"); }
  a.muted = function () { var s = storage("localStorage"); return !!(s && s.getItem(MUTE_KEY) === "1"); };
  a.enabled = function () { return !!a.ctx && a.ctx.state === "running"; };

  function showState() {
    var root = document.documentElement;
    root.setAttribute("data-sound", a.enabled() ? "on" : "off");
    root.setAttribute("data-mute", a.muted() ? "on" : "off");
  }

  function wake() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return false;
    if (!a.ctx) a.ctx = new Ctx();
    var p = a.ctx.resume ? a.ctx.resume() : null;
    if (p && p.then) p.then(showState, showState);
    return true;
  }

  a.enable = function () {
    if (!wake()) return;
    var s = storage("sessionStorage");
    if (s) s.setItem(SOUND_KEY, "1");
    showState();
  };
  a.toggleMute = function () {
    var s = storage("localStorage");
    if (s) s.setItem(MUTE_KEY, a.muted() ? "0" : "1");
    showState();
  };

  var lastTone = 0;
  function tone(reason) {
    if (!a.enabled() || a.muted()) return;
    var now = Date.now();
    if (now - lastTone < MIN_GAP_MS) return;
    lastTone = now;
    var ctx = a.ctx, t = ctx.currentTime;
    (TONES[reason] || TONES["new"]).forEach(function (hz, i) {
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = hz;
      var start = t + i * 0.18;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.17);
    });
    a.stats.played += 1;
    a.stats.last = reason;
  }

  function redraw() { if (W.live && W.live.redrawQueue) W.live.redrawQueue(); }

  function onDesk() { return !!(W.live && W.live.cfg && W.live.cfg.page === "desk"); }

  /* Something to announce about an incident (assets/20-wuwang-live.js calls this). */
  a.note = function (id, reason) {
    if (!id || !reason || !onDesk()) return;
    a.pending.set(id, reason);
    tone(reason);
    redraw();
  };
  a.ack = function (id) {
    if (a.pending.delete(id)) redraw();
  };
  a.reasonOf = function (id) { return a.pending.get(id) || null; };
  /* Incidents gone from the picture (closed, merged) have nothing left to acknowledge. */
  a.forget = function (ids) {
    a.pending.forEach(function (_, id) { if (!ids.has(id)) a.pending.delete(id); });
  };

  /* The queue's buttons: enable the tone, mute; a row's 知道了 acknowledges without opening. */
  document.addEventListener("click", function (ev) {
    var target = ev.target && ev.target.closest ? ev.target : null;
    if (!target) return;
    if (target.closest("#queue-sound")) a.enable();
    else if (target.closest("#queue-mute")) a.toggleMute();
  });
  /* Enabled earlier in this session (then reloaded): the first touch of the page wakes it. */
  function rewake() {
    if (wanted() && !a.enabled()) { wake(); showState(); }
  }
  document.addEventListener("pointerdown", rewake, true);
  document.addEventListener("keydown", rewake, true);
  showState();
})();
