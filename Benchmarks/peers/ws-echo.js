// node `ws` (Debian node-ws) echo peer for the benchmark: every message goes
// back as it came. Run with NODE_PATH=/usr/share/nodejs.
// Usage: node ws-echo.js PORT [--compression]   (permessage-deflate with ws's defaults)
//        node ws-echo.js PORT --tls CERT KEY    (wss:// on node's https server)
'use strict';
const WebSocket = require('ws');
const fs = require('fs');
const port = parseInt(process.argv[2] || '9004', 10);
const perMessageDeflate = process.argv[3] === '--compression';
const maxPayload = 16 * 1024 * 1024;
let server;
if (process.argv[3] === '--tls') {
  const https = require('https').createServer({ cert: fs.readFileSync(process.argv[4]), key: fs.readFileSync(process.argv[5]) });
  server = new WebSocket.Server({ server: https, maxPayload });
  https.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
} else {
  server = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate, maxPayload });
}
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
});
server.on('listening', () => console.log(`listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
