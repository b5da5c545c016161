// node `ws` (Debian node-ws) fan-out peer for the publish benchmark: every
// message any connection sends goes to every open connection (the sender
// included), by a loop over the server's clients, as ws's README shows
// broadcasting. Run with NODE_PATH=/usr/share/nodejs.
// Usage: node ws-pubsub.js PORT
'use strict';
const WebSocket = require('ws');
const port = parseInt(process.argv[2] || '9006', 10);
const server = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => {
    for (const client of server.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
server.on('listening', () => console.log(`listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
