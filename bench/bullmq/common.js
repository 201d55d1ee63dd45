'use strict';
// What enqueue.js, worker.js and wait.js share: the Redis names, the
// connection settings and the job data. Run by bench/worker.sh with NODE_PATH
// pointing at the node_modules it installed from package-lock.json.

const Redis = require('ioredis');

// docs/events.md, and workers/worker-streams.h
const STREAM_EVENTS = 'bookstore:orders:events';
const STREAM_STATUS = 'bookstore:orders:status';
const STREAM_NOTIFICATIONS = 'bookstore:notifications';
const GROUP = 'bookstore-workers';
const DONE_KEY_PREFIX = 'bookstore:orders:done:';
const DONE_TTL_S = 604800;

// BullMQ's queues: the seed's job names, one queue each (as our worker has one
// stream per queue).
const QUEUE_PROCESS_ORDER = 'process-order';
const QUEUE_SEND_NOTIFICATION = 'send-notification';

// The seed's defaultJobOptions (workers/src/queue.ts, JOB_REMOVE_ON_* defaults).
// BULLMQ_REMOVE_ON_COMPLETE (a number, true or false) overrides
// removeOnComplete, for experiments.
const SEED_JOB_OPTIONS = {
  removeOnComplete: removeOnComplete(process.env.BULLMQ_REMOVE_ON_COMPLETE),
  removeOnFail: 50,
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
};

function removeOnComplete(raw) {
  if (raw === undefined || raw === '') return 100;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^[0-9]+$/.test(raw)) return Number(raw);
  die(`BULLMQ_REMOVE_ON_COMPLETE must be a number, true or false, not '${raw}'`);
}

function die(message) {
  process.stderr.write(`${require('path').basename(process.argv[1])}: ${message}\n`);
  process.exit(2);
}

function envInt(name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw)) die(`${name} must be an integer, not '${raw}'`);
  const value = Number(raw);
  if (value < min || value > max) die(`${name} must be in ${min}..${max}, not ${value}`);
  return value;
}

function connectionOptions() {
  return {
    host: process.env.REDIS_HOST || '127.0.0.1',
    port: envInt('REDIS_PORT', 6379, 1, 65535),
    password: process.env.REDIS_PASSWORD || undefined,
    maxRetriesPerRequest: null, // required by BullMQ's workers
  };
}

// For the worker: reconnect forever. For enqueue.js and wait.js (failFast):
// give up after about two seconds without Redis instead of hanging.
function connect({ failFast = false } = {}) {
  const options = connectionOptions();
  if (failFast) {
    options.maxRetriesPerRequest = 1;
    options.retryStrategy = (times) => (times > 20 ? null : 100);
  }
  return new Redis(options);
}

// The fields of order.created number i (1-based), as bookstore-orders' relay
// writes them: flat strings, money with two decimals.
function orderEvent(i) {
  const bookId = 1 + (i % 100);
  const quantity = 1 + (i % 5);
  const unitCents = 500 + ((bookId * 37) % 4000);
  const cents = (n) => `${Math.floor(n / 100)}.${String(n % 100).padStart(2, '0')}`;
  return {
    type: 'order.created',
    outbox_id: String(i),
    order_id: String(i),
    book_id: String(bookId),
    book_title: `Bench book ${bookId}`,
    book_author: `Author ${bookId % 17}`,
    quantity: String(quantity),
    unit_price: cents(unitCents),
    total_price: cents(unitCents * quantity),
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)).toISOString(),
  };
}

module.exports = {
  STREAM_EVENTS,
  STREAM_STATUS,
  STREAM_NOTIFICATIONS,
  GROUP,
  DONE_KEY_PREFIX,
  DONE_TTL_S,
  QUEUE_PROCESS_ORDER,
  QUEUE_SEND_NOTIFICATION,
  SEED_JOB_OPTIONS,
  die,
  envInt,
  connectionOptions,
  connect,
  orderEvent,
};
