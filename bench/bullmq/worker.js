'use strict';
// The seed's worker stack (BullMQ on Node.js) doing what bookstore-worker's
// process-order and send-notification queues do, for bench/worker.sh.
//
//   node worker.js
//
// Two BullMQ Workers in one process, as bookstore-worker has two queues in one
// process, each with WORKER_CONCURRENCY jobs in flight:
//   process-order      per job: GET bookstore:orders:done:<order_id> (skip when
//                      set), XADD 'processing' to bookstore:orders:status, the
//                      three simulated steps (WORKER_STEP_DELAY_MS each; 0 =
//                      setImmediate, a turn of the event loop, like GLib's
//                      g_timeout_add (0)), XADD 'completed', SET the done key
//                      EX 604800, and add a job to the queue send-notification;
//   send-notification  per job: one log record (NOTIFICATION_TYPE, RECIPIENT,
//                      ORDER_ID).
// Each queue's job is then finished by BullMQ itself (moveToFinished, which
// also fetches the next job), the counterpart of our XACK. The log records
// are those bookstore-worker writes (5 per order, 1 per notification), one
// JSON line per write on stderr.
//
// Environment: REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, WORKER_CONCURRENCY
// (default 5), WORKER_NAME (default hostname-pid), WORKER_STEP_DELAY_MS
// (default 10, as bookstore-worker), NOTIFY_RECIPIENT (default
// orders@localhost). SIGTERM/SIGINT: close both workers (jobs in flight
// finish), exit 0.

const os = require('os');
const { Queue, Worker } = require('bullmq');
const common = require('./common');

const concurrency = common.envInt('WORKER_CONCURRENCY', 5, 1, 1000);
const stepDelayMs = common.envInt('WORKER_STEP_DELAY_MS', 10, 0, 600000);
const workerName = process.env.WORKER_NAME || `${os.hostname()}-${process.pid}`;
const recipient = process.env.NOTIFY_RECIPIENT || 'orders@localhost';
const steps = ['inventory check', 'payment', 'fulfilment'];

// What bs-log writes when stderr is not the journal: one JSON object a line.
function log(fields) {
  const record = { TIMESTAMP: new Date().toISOString(), LEVEL: 'info', GLIB_DOMAIN: 'bookstore-worker', ...fields };
  process.stderr.write(`${JSON.stringify(record)}\n`);
}

function pause(ms) {
  return new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));
}

// The processors' own commands share one connection, as bookstore-worker's
// handlers share its command connection; BullMQ's workers have their own.
const commands = common.connect();
const notifications = new Queue(common.QUEUE_SEND_NOTIFICATION, {
  connection: commands,
  defaultJobOptions: common.SEED_JOB_OPTIONS,
});

async function processOrder(job) {
  const orderId = job.data.order_id;
  const record = { QUEUE: common.QUEUE_PROCESS_ORDER, JOB_ID: job.id, ORDER_ID: orderId };
  const status = (value) =>
    commands.xadd(common.STREAM_STATUS, '*', 'order_id', orderId, 'status', value, 'event_id', job.id,
      'worker', workerName);

  const done = await commands.get(common.DONE_KEY_PREFIX + orderId);
  if (done !== null) return 'skipped';
  log({ ...record, STEP: '-', MESSAGE: `processing order ${orderId} (quantity ${job.data.quantity})` });
  await status('processing');
  for (const step of steps) {
    await pause(stepDelayMs);
    log({ ...record, STEP: step, MESSAGE: `order ${orderId}: ${step} done` });
  }
  await status('completed');
  log({ ...record, STEP: '-', MESSAGE: `order ${orderId} completed` });
  await commands.set(common.DONE_KEY_PREFIX + orderId, 'completed', 'EX', common.DONE_TTL_S);
  await notifications.add(common.QUEUE_SEND_NOTIFICATION, {
    type: 'order.completed',
    order_id: orderId,
    recipient,
  });
  return 'completed';
}

async function sendNotification(job) {
  const { type, order_id: orderId, recipient: to } = job.data;
  log({
    QUEUE: common.QUEUE_SEND_NOTIFICATION,
    JOB_ID: job.id,
    NOTIFICATION_TYPE: type,
    RECIPIENT: to,
    ORDER_ID: orderId,
    MESSAGE: `notification ${type} for order ${orderId} sent to ${to}`,
  });
}

const workers = [
  new Worker(common.QUEUE_PROCESS_ORDER, processOrder, {
    connection: common.connectionOptions(),
    concurrency,
  }),
  new Worker(common.QUEUE_SEND_NOTIFICATION, sendNotification, {
    connection: common.connectionOptions(),
    concurrency,
  }),
];
for (const worker of workers) {
  worker.on('failed', (job, error) =>
    log({ LEVEL: 'warning', QUEUE: worker.name, JOB_ID: job ? job.id : '-', MESSAGE: `job failed: ${error.message}` }));
  worker.on('error', (error) => log({ LEVEL: 'warning', QUEUE: worker.name, MESSAGE: `worker error: ${error.message}` }));
}

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  await Promise.all(workers.map((worker) => worker.close()));
  await notifications.close();
  await commands.quit();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
log({ MESSAGE: `BullMQ worker ${workerName} started: concurrency ${concurrency}, step delay ${stepDelayMs} ms` });
