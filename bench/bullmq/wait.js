'use strict';
// Wait until a worker has finished N pre-enqueued orders and their
// notifications; used by bench/worker.sh for both workers, so that both are
// timed by the same poller.
//
//   node wait.js streams|bullmq N PIDFILE
//
// Start it before the worker: once connected to Redis it prints "ready";
// then it polls Redis every BENCH_POLL_MS (default 10) on that connection,
// and finally prints "first_ms=T1 done_ms=T2" (milliseconds since the
// epoch): T1 when the
// first status entry appeared on bookstore:orders:status (both workers write
// it), T2 when the work was seen finished:
//   streams  on bookstore:orders:events and bookstore:notifications, the group
//            bookstore-workers has pending 0 and lag 0 (XINFO GROUPS), and
//            bookstore:notifications holds N entries;
//   bullmq   the queue send-notification has been given N jobs (its id
//            counter) and neither queue has a job waiting, prioritized,
//            delayed or active.
// Exits 1 if the worker whose pid is in PIDFILE (once that file exists) goes
// away first, or after BENCH_TIMEOUT_S (default 600) seconds, with the state
// last seen.

const fs = require('fs');
const common = require('./common');

const pollMs = common.envInt('BENCH_POLL_MS', 10, 1, 10000);
const timeoutS = common.envInt('BENCH_TIMEOUT_S', 600, 1, 86400);

function fieldsOf(flat) {
  const out = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}

async function groupState(redis, stream) {
  let groups;
  try {
    groups = await redis.xinfo('GROUPS', stream);
  } catch (error) {
    if (/no such key/i.test(error.message)) return { pending: -1, lag: -1 };
    throw error;
  }
  for (const flat of groups) {
    const group = fieldsOf(flat);
    if (group.name === common.GROUP) return { pending: group.pending, lag: group.lag };
  }
  return { pending: -1, lag: -1 };
}

async function streamsState(redis, n) {
  const events = await groupState(redis, common.STREAM_EVENTS);
  const notifications = await groupState(redis, common.STREAM_NOTIFICATIONS);
  const published = await redis.xlen(common.STREAM_NOTIFICATIONS);
  const done = events.pending === 0 && events.lag === 0 && notifications.pending === 0
    && notifications.lag === 0 && published === n;
  return {
    done,
    text: `events pending ${events.pending} lag ${events.lag}; notifications ${published}/${n}, `
      + `pending ${notifications.pending} lag ${notifications.lag}`,
  };
}

async function bullmqState(redis, n) {
  const counts = [];
  let open = 0;
  for (const queue of [common.QUEUE_PROCESS_ORDER, common.QUEUE_SEND_NOTIFICATION]) {
    const prefix = `bull:${queue}:`;
    const [[, wait], [, prioritized], [, delayed], [, active]] = await redis
      .multi()
      .llen(`${prefix}wait`)
      .zcard(`${prefix}prioritized`)
      .zcard(`${prefix}delayed`)
      .llen(`${prefix}active`)
      .exec();
    open += wait + prioritized + delayed + active;
    counts.push(`${queue}: wait ${wait} prioritized ${prioritized} delayed ${delayed} active ${active}`);
  }
  const added = Number(await redis.get(`bull:${common.QUEUE_SEND_NOTIFICATION}:id`)) || 0;
  return { done: added === n && open === 0, text: `${counts.join('; ')}; notifications added ${added}/${n}` };
}

async function main() {
  const [mode, count, pidFile] = process.argv.slice(2);
  if (!['bullmq', 'streams'].includes(mode) || !/^[1-9][0-9]*$/.test(count || '') || !pidFile) {
    common.die('usage: wait.js streams|bullmq N PIDFILE');
  }
  const n = Number(count);
  const redis = common.connect({ failFast: true });
  const deadline = Date.now() + timeoutS * 1000;
  let firstMs = 0;
  let state = { done: false, text: 'not polled yet' };
  let pid = '';

  await redis.ping();
  process.stdout.write('ready\n');

  for (;;) {
    if (firstMs === 0 && (await redis.xlen(common.STREAM_STATUS)) > 0) firstMs = Date.now();
    state = mode === 'streams' ? await streamsState(redis, n) : await bullmqState(redis, n);
    if (state.done) break;
    if (pid === '' && fs.existsSync(pidFile)) pid = fs.readFileSync(pidFile, 'utf8').trim();
    if (pid !== '' && !fs.existsSync(`/proc/${pid}`)) {
      process.stderr.write(`wait.js: the worker (pid ${pid}) exited; ${state.text}\n`);
      process.exit(1);
    }
    if (Date.now() > deadline) {
      process.stderr.write(`wait.js: not done after ${timeoutS} s; ${state.text}\n`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  const doneMs = Date.now();
  await redis.quit();
  process.stdout.write(`first_ms=${firstMs || doneMs} done_ms=${doneMs}\n`);
}

main().catch((error) => common.die(error.stack || String(error)));
