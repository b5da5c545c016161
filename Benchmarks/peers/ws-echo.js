// node `ws` (Debian node-ws) echo peer for the benchmark: every message goes
// back as it came. Run with NODE_PATH=/usr/share/nodejs.
// Usage: node ws-echo.js PORT [--compression]   (permessage-deflate with ws's defaults)
'use strict';
const WebSocket = require('ws');
const port = parseInt(process.argv[2] || '9004', 10);
const perMessageDeflate = process.argv[3] === '--compression';
const server = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate, maxPayload: 16 * 1024 * 1024 });
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
});
server.on('listening', () => console.log(`listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
