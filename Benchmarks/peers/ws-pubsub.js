// node `ws` (Debian node-ws) fan-out peer for the publish benchmark: every
// message any connection sends goes to every open connection (the sender
// included), by a loop over the server's clients, as ws's README shows
// broadcasting. With a Redis URL, the way servers share clients through
// Redis (Debian node-redis): each message is published to Redis, and each
// server broadcasts what its subscription receives, its own messages
// included. Run with NODE_PATH=/usr/share/nodejs.
// Usage: node ws-pubsub.js PORT [redis://HOST:PORT]
'use strict';
const WebSocket = require('ws');
const port = parseInt(process.argv[2] || '9006', 10);
const redisUrl = process.argv[3];

function broadcast(data, isBinary) {
  for (const client of server.clients) {
    if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
  }
}

let server;
let publish = broadcast;

async function start() {
  if (redisUrl) {
    const { createClient } = require('redis');
    const publisher = createClient({ url: redisUrl });
    const subscriber = publisher.duplicate();
    await publisher.connect();
    await subscriber.connect();
    // The first byte says binary (1) or text (0): Redis carries bytes only.
    await subscriber.subscribe('bench', (message) => broadcast(message.subarray(1), message[0] === 1), true);
    publish = (data, isBinary) => publisher.publish('bench', Buffer.concat([Buffer.from([isBinary ? 1 : 0]), data]));
  }
  server = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  server.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => publish(data, isBinary));
  });
  server.on('listening', () => console.log(`listening on 127.0.0.1:${port}`));
}

start().catch((error) => { console.error(error); process.exit(1); });
process.on('SIGTERM', () => { if (server) server.close(); process.exit(0); });
