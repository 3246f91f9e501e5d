/**
 * The demo page (/.gatehouse/demo): connects to a service (the echo service by
 * default) with the client library, shows which transport is in use, can force
 * the fallback, sends and receives. Plain DOM, no framework, served with a CSP.
 */
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Gatehouse demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin-bottom: 1rem; }
  #state { font-weight: bold; }
  #log { border: 1px solid #ccc; border-radius: 6px; height: 18rem; overflow: auto; padding: .5rem; font: 13px ui-monospace, monospace; white-space: pre-wrap; }
  .in { color: #05572d; } .out { color: #1f3f8f; } .sys { color: #777; }
  input[type=text] { width: 22rem; }
</style>
</head>
<body>
<h1>Gatehouse demo</h1>
<fieldset>
  <legend>Connection</legend>
  <label>URL <input id="url" type="text"></label><br>
  <label><input type="radio" name="transport" value="auto" checked> automatic</label>
  <label><input type="radio" name="transport" value="websocket"> WebSocket only</label>
  <label><input type="radio" name="transport" value="fallback"> force the HTTP fallback</label><br>
  <button id="connect">Connect</button> <button id="disconnect" disabled>Disconnect</button>
  <p>State: <span id="state">closed</span> · transport: <span id="transport">–</span></p>
</fieldset>
<fieldset>
  <legend>Messages</legend>
  <form id="form"><input id="text" type="text" value="Hello, Gatehouse" autocomplete="off"> <button id="send" disabled>Send</button></form>
</fieldset>
<div id="log"></div>
<script src="/.gatehouse/client.js"></script>
<script>
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var socket = null;
  var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  $('url').value = scheme + '//' + location.host + '/echo';
  function log(cls, text) {
    var line = document.createElement('div');
    line.className = cls;
    line.textContent = new Date().toLocaleTimeString() + '  ' + text;
    $('log').appendChild(line);
    $('log').scrollTop = $('log').scrollHeight;
  }
  function setState() {
    var names = ['connecting', 'open', 'closing', 'closed'];
    $('state').textContent = socket ? names[socket.readyState] : 'closed';
    $('transport').textContent = socket && socket.transport
      ? socket.transport + (socket.transport === 'fallback' && socket.fallbackMode ? ' (' + (socket.fallbackMode === 'poll' ? 'long-polling' : 'streaming') + ')' : '')
      : '–';
    var open = socket && socket.readyState === 1;
    $('send').disabled = !open;
    $('disconnect').disabled = !socket || socket.readyState > 1;
    $('connect').disabled = !!socket && socket.readyState < 2;
  }
  $('connect').onclick = function () {
    var transport = document.querySelector('input[name=transport]:checked').value;
    socket = new Gatehouse.GatehouseSocket($('url').value, [], { transport: transport });
    setState();
    socket.onopen = function () { log('sys', 'open over ' + socket.transport); setState(); };
    socket.onmessage = function (e) { log('in', '← ' + e.data); };
    socket.onerror = function () { log('sys', 'error'); };
    socket.onclose = function (e) { log('sys', 'closed: ' + e.code + (e.reason ? ' ' + e.reason : '') + (e.wasClean ? ' (clean)' : '')); setState(); };
  };
  $('disconnect').onclick = function () { if (socket) { socket.close(1000, 'bye'); setState(); } };
  $('form').onsubmit = function (ev) {
    ev.preventDefault();
    if (!socket || socket.readyState !== 1) return;
    socket.send($('text').value);
    log('out', '→ ' + $('text').value);
  };
})();
</script>
</body>
</html>
`;
