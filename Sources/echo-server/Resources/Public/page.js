(function () {
  "use strict";
  var url = document.getElementById("connectionUrl");
  var connectButton = document.getElementById("connectButton");
  var message = document.getElementById("sendMessage");
  var binary = document.getElementById("sendBinary");
  var sendButton = document.getElementById("sendButton");
  var closeButton = document.getElementById("closeButton");
  var stateLabel = document.getElementById("stateLabel");
  var stateText = document.getElementById("stateText");
  var log = document.getElementById("commsLog");
  // The page's one socket. A socket that is replaced keeps its handlers, so
  // each handler first checks that its socket is still this one.
  var socket = null;

  url.value = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

  function setState(text) {
    stateText.textContent = text;
    stateLabel.setAttribute("data-state", text);
    var open = socket !== null && socket.readyState === WebSocket.OPEN;
    message.disabled = !open;
    binary.disabled = !open;
    sendButton.disabled = !open;
    closeButton.disabled = !open;
    // One socket at a time: Connect waits until the last one has closed.
    connectButton.disabled = socket !== null && socket.readyState !== WebSocket.CLOSED;
    url.disabled = connectButton.disabled;
  }

  function addRow(from, to, data) {
    var empty = log.querySelector(".empty");
    if (empty) { empty.remove(); }
    var row = document.createElement("tr");
    [from, to, data].forEach(function (text, i) {
      var cell = document.createElement("td");
      cell.textContent = text;  // text, never HTML: messages are untrusted
      if (i === 2) { cell.className = "data"; }
      row.appendChild(cell);
    });
    log.appendChild(row);
  }

  // Binary data as its size and its first 16 bytes in hex.
  function describeBytes(buffer) {
    var bytes = new Uint8Array(buffer);
    var hex = Array.prototype.slice.call(bytes, 0, 16).map(function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join(" ");
    return "Binary, " + bytes.length + (bytes.length === 1 ? " byte" : " bytes") +
      (bytes.length > 0 ? ": " + hex + (bytes.length > 16 ? " …" : "") : "");
  }

  function connect() {
    if (connectButton.disabled) { return; }
    var ws;
    try {
      ws = new WebSocket(url.value);
    } catch (e) {
      addRow("Client", "Client", "Invalid URL: " + e.message);
      setState("Closed");
      return;
    }
    ws.binaryType = "arraybuffer";
    socket = ws;
    var opened = false;
    var closedByClient = false;
    ws.closeFromClient = function () { closedByClient = true; ws.close(1000, "Closing from client"); };
    setState("Connecting");
    ws.onopen = function () {
      if (ws !== socket) { return; }
      opened = true;
      setState("Open");
      addRow("Server", "Client", "Connection opened");
    };
    ws.onclose = function (event) {
      if (ws !== socket) { return; }
      var detail = "Code: " + event.code + ". Reason: " + event.reason;
      if (closedByClient) {
        addRow("Client", "Server", "Closed by the client. " + detail);
      } else if (opened) {
        addRow("Server", "Client", (event.code === 1006 ? "Connection lost. " : "Closed by the server. ") + detail);
      } else {
        addRow("Client", "Client", "Connection failed. " + detail);
        // A browser reports a refused handshake (403, 400, 503) or an
        // unreachable server only as 1006, with no reason: say where to look.
        addRow("Client", "Client", "Hint: the connection never opened. The server refused the handshake or " +
          "could not be reached: check the server's log (--log-level debug names the reason), " +
          "that this page's origin is allowed, and the URL.");
      }
      setState("Closed");
    };
    ws.onerror = function () {
      if (ws !== socket) { return; }
      // Browsers give no detail on purpose; the close that follows has the code.
      addRow("Client", "Client", "Error: the connection failed or was cut.");
    };
    ws.onmessage = function (event) {
      if (ws !== socket) { return; }
      addRow("Server", "Client", typeof event.data === "string" ? event.data : describeBytes(event.data));
    };
  }
  connectButton.onclick = connect;
  url.addEventListener("keydown", function (event) { if (event.key === "Enter") { connect(); } });

  function send() {
    if (!socket || socket.readyState !== WebSocket.OPEN) { return; }
    var data = message.value;
    if (binary.checked) {
      var bytes = new TextEncoder().encode(data);
      socket.send(bytes);
      addRow("Client", "Server", describeBytes(bytes.buffer));
    } else {
      socket.send(data);
      addRow("Client", "Server", data);
    }
    message.value = "";
  }
  sendButton.onclick = send;
  message.addEventListener("keydown", function (event) { if (event.key === "Enter") { send(); } });

  closeButton.onclick = function () {
    if (!socket || socket.readyState !== WebSocket.OPEN) { return; }
    socket.closeFromClient();
    setState("Closing");
  };

  setState("Ready to connect");
})();
