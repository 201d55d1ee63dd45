'use strict';
// Enqueue N order.created jobs before a worker starts.
//
//   node enqueue.js bullmq N    N jobs 'process-order' on BullMQ's queue
//                               process-order, with the seed's job options
//   node enqueue.js streams N   N entries on bookstore:orders:events (what
//                               bookstore-orders' relay writes), for
//                               bookstore-worker
//
// Both carry the same fields (common.js orderEvent). REDIS_HOST/REDIS_PORT.
// Prints nothing; exits non-zero on any error.

const { Queue } = require('bullmq');
const common = require('./common');

const BATCH = 1000;

async function enqueueBullmq(connection, n) {
  const queue = new Queue(common.QUEUE_PROCESS_ORDER, {
    connection,
    defaultJobOptions: common.SEED_JOB_OPTIONS,
  });
  for (let first = 1; first <= n; first += BATCH) {
    const jobs = [];
    for (let i = first; i < first + BATCH && i <= n; i++) {
      jobs.push({ name: common.QUEUE_PROCESS_ORDER, data: common.orderEvent(i) });
    }
    await queue.addBulk(jobs);
  }
  await queue.close();
}

async function enqueueStreams(connection, n) {
  for (let first = 1; first <= n; first += BATCH) {
    const pipeline = connection.pipeline();
    for (let i = first; i < first + BATCH && i <= n; i++) {
      pipeline.xadd(common.STREAM_EVENTS, '*', ...Object.entries(common.orderEvent(i)).flat());
    }
    const results = await pipeline.exec();
    for (const [error] of results) {
      if (error) throw error;
    }
  }
}

async function main() {
  const [mode, count] = process.argv.slice(2);
  if (!['bullmq', 'streams'].includes(mode) || !/^[1-9][0-9]*$/.test(count || '')) {
    common.die('usage: enqueue.js bullmq|streams N');
  }
  const n = Number(count);
  const connection = common.connect({ failFast: true });
  if (mode === 'bullmq') await enqueueBullmq(connection, n);
  else await enqueueStreams(connection, n);
  await connection.quit();
}

main().catch((error) => common.die(error.stack || String(error)));
