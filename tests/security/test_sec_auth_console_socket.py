"""The console's live socket (dashboard/assets/00-wuwang-core.js, ``W.Socket``) run in
Node with a fake WebSocket: the token never goes into the URL, a renewed token is sent on
the open socket, 4401 ends the session, and 1013 ("server unavailable") backs off far
longer than a lost connection, with jitter."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CORE = Path(__file__).resolve().parents[2] / "dashboard" / "assets" / "00-wuwang-core.js"
NODE = shutil.which("node") or shutil.which("nodejs")

HARNESS = r"""
globalThis.window = globalThis;
globalThis.document = { getElementById: function () { return null; } };
globalThis.setInterval = function () { return 0; };
var timers = [];
globalThis.setTimeout = function (fn, ms) { timers.push({ fn: fn, ms: ms }); return timers.length; };
globalThis.clearTimeout = function () {};
var sockets = [];
function FakeWS(url) { this.url = url; this.sent = []; this.readyState = 0; sockets.push(this); }
FakeWS.prototype.send = function (d) { this.sent.push(JSON.parse(d)); };
FakeWS.prototype.close = function () {};
globalThis.WebSocket = FakeWS;
eval(require("fs").readFileSync(process.argv[process.argv.length - 1], "utf8"));

var events = [];
var handlers = {
  message: function (m) { events.push("message:" + m.type); },
  close: function (ev, again) { events.push("close:" + ev.code + ":" + again); },
  expired: function () { events.push("expired"); }
};
function open(ws) { ws.readyState = 1; ws.onopen(); }
function retryDelays() {  // the connect guard (10 s) aside
  return timers.filter(function (t) { return t.ms !== 10000; }).map(function (t) { return t.ms; });
}

var s = new window.wuwang.Socket("ws://cmd:8000/ws", "T1", handlers);
open(sockets[0]);
sockets[0].onmessage({ data: JSON.stringify({ type: "snapshot" }) });
s.setToken("T2");                                     // renewed on the open socket
sockets[0].onclose({ code: 1013 });                   // Redis down at the server
var unavailable = retryDelays().slice();
timers = [];
sockets[0].onclose({ code: 1006 });                   // (ignored: not the current socket)
s.connect(); open(sockets[1]); sockets[1].onmessage({ data: JSON.stringify({ type: "snapshot" }) });
sockets[1].onclose({ code: 1006 });                   // a lost connection
var lost = retryDelays().slice();
s.connect(); open(sockets[2]);
sockets[2].readyState = 3;                            // closing: a renewal cannot be sent now …
s.setToken("T3");
sockets[2].onclose({ code: 4401 });                   // … so a 4401 for T2 means: reconnect with T3
var afterRenewal = events.slice();
s.connect(); open(sockets[3]);
sockets[3].onclose({ code: 4401 });                   // T3 itself refused: log in again
console.log(JSON.stringify({
  urls: sockets.map(function (w) { return w.url; }),
  sent: sockets.map(function (w) { return w.sent; }),
  unavailable: unavailable, lost: lost, afterRenewal: afterRenewal, events: events, stopped: s.stopped
}));
"""


@pytest.fixture
def run() -> dict[str, Any]:
    if NODE is None:
        pytest.skip("needs node to run the console's script")
    done = subprocess.run(
        [NODE, "-e", HARNESS, str(CORE)], capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_token_is_never_in_the_url_but_the_first_message(run: dict[str, Any]) -> None:
    assert run["urls"] == ["ws://cmd:8000/ws"] * 4
    assert run["sent"][0] == [{"type": "auth", "token": "T1"}, {"type": "auth", "token": "T2"}]
    assert run["sent"][1] == [{"type": "auth", "token": "T2"}]
    assert run["sent"][3] == [{"type": "auth", "token": "T3"}]


def test_4401_ends_the_session_unless_a_renewed_token_is_waiting(run: dict[str, Any]) -> None:
    assert "expired" not in run["afterRenewal"] and "close:4401:true" in run["afterRenewal"]
    assert run["events"][-2:] == ["close:4401:false", "expired"] and run["stopped"] is True


def test_unavailable_backs_off_longer_than_a_lost_connection(run: dict[str, Any]) -> None:
    (unavailable,) = run["unavailable"]
    (lost,) = run["lost"]
    assert 2500 <= unavailable <= 5000  # 5 s base, full jitter in [0.5, 1)
    assert 250 <= lost <= 500


LIVE = CORE.with_name("20-wuwang-live.js")
CATALOGUES = Path(__file__).resolve().parents[2] / "wuwang" / "i18n"

#: The status line and the stale banner (20-wuwang-live.js, ``renderStatus``) as the
#: socket's close codes leave them: 1013 says "server unavailable", in the page's
#: language, and the banner goes back to its usual words once the stream is back.
BANNER_HARNESS = r"""
var files = process.argv.slice(-3);
var listeners = function () {};
var banner = { attrs: {}, textContent: "usual words",
  hasAttribute: function (n) { return n in this.attrs; },
  getAttribute: function (n) { return this.attrs[n]; },
  setAttribute: function (n, v) { this.attrs[n] = v; },
  removeAttribute: function (n) { delete this.attrs[n]; } };
globalThis.window = globalThis;
globalThis.setInterval = function () { return 0; };  // the page's clocks: not this test's
window.addEventListener = listeners;
globalThis.document = { addEventListener: listeners, hidden: false,
  querySelectorAll: function () { return []; },
  getElementById: function (id) { return id === "stale-banner" ? banner : null; } };
var props = [];
window.dash_clientside = { no_update: "NO_UPDATE",
  set_props: function (id, p) {
    props.push([id, p]);
    if (id === "stale-banner") banner.textContent = p.children;
  } };
var fs = require("fs");
eval(fs.readFileSync(files[0], "utf8"));
eval(fs.readFileSync(files[1], "utf8"));
var catalogue = JSON.parse(fs.readFileSync(files[2], "utf8"));
var cs = window.dash_clientside.wuwang;
var out = {};
out.unavailable = cs.renderStatus({ connected: false, stale: true, unavailable: true }, catalogue);
out.bannerUnavailable = banner.textContent;
out.lost = cs.renderStatus({ connected: false, stale: true }, catalogue);
out.bannerLost = banner.textContent;
out.back = cs.renderStatus({ connected: true, stale: false }, catalogue);
console.log(JSON.stringify(out));
"""


@pytest.mark.parametrize("catalogue", ["zh_CN", "en"])
def test_unavailable_is_said_on_the_status_line_and_the_banner(catalogue: str) -> None:
    if NODE is None:
        pytest.skip("needs node to run the console's script")
    words_file = CATALOGUES / f"{catalogue}.json"
    done = subprocess.run(
        [NODE, "-e", BANNER_HARNESS, str(CORE), str(LIVE), str(words_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(done.stdout)
    words = json.loads(words_file.read_text(encoding="utf-8"))
    assert out["unavailable"] == [words["live.unavailable"], "connection bad", False]
    assert out["bannerUnavailable"] == words["live.unavailable_banner"]
    # a lost connection (no 1013): "reconnecting", and the banner's usual words again
    assert out["lost"] == [words["live.reconnecting"], "connection bad", False]
    assert out["bannerLost"] == "usual words"
    assert out["back"] == [words["live.connected"], "connection ok", True]
