// Runs s3rver with a request log, for scripts/s3-server.sh (see there).
// Arguments: the s3rver module's folder, the data directory, the port (0: any free port).
'use strict';

const [, , modulePath, directory, port] = process.argv;
const S3rver = require(modulePath);

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port || 0),
  directory,
  silent: true,
});

server.run().then(
  (address) => {
    // One JSON line per answered request, so tests can see which requests reached the server.
    server.httpServer.on('request', (req, res) => {
      res.on('finish', () => {
        process.stdout.write(
          JSON.stringify({ method: req.method, url: req.url, status: res.statusCode }) + '\n');
      });
    });
    process.stdout.write(`S3 server listening on 127.0.0.1:${address.port}\n`);
  },
  (err) => {
    process.stderr.write(`s3rver failed to start: ${err}\n`);
    process.exit(1);
  });

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close().then(() => process.exit(0), () => process.exit(1)));
}
