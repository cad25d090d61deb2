/**
 * The benchmark's baseline: a bare Fastify HTTPS server that answers every POST /mutate with one
 * fixed AdmissionReview, no decoding, no decision, no logging. Usage: bare-server.ts CERT KEY RESPONSE_FILE
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const [cert, key, responseFile] = process.argv.slice(2);
if (cert === undefined || key === undefined || responseFile === undefined) {
  console.error('usage: bare-server.ts CERT KEY RESPONSE_FILE');
  process.exit(2);
}
const response = readFileSync(responseFile, 'utf8');
const app = Fastify({ https: { cert: readFileSync(cert), key: readFileSync(key) }, bodyLimit: 7 * 1024 * 1024, logger: false });
app.post('/mutate', (_request, reply) => reply.type('application/json').send(response));
app.listen({ port: 0, host: '127.0.0.1' }).then(
  () => {
    const address = app.server.address();
    console.log(JSON.stringify({ msg: 'serving', port: typeof address === 'object' && address ? address.port : 0 }));
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
