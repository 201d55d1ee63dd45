#!/usr/bin/node
// GET /v1/books/{id} in fastify 5 + postgres.js, written the way fastify
// users write it: a JSON schema for the 200 answer (fastify compiles it into
// a serializer with fast-json-stringify), one postgres.js pool per process.
// bench/peers.sh runs it and checks that it answers byte for byte what
// bookstore-books answers (books/books-book.c).
//
// Environment: PORT, BIND_ADDRESS (default 127.0.0.1), DATABASE_URL,
// POOL_SIZE (connections per process, default 16), WORKERS (default 1: one
// process; N > 1: a node:cluster primary forking N workers that share the
// listening socket).
'use strict'

const cluster = require('node:cluster')

const workers = Number(process.env.WORKERS || 1)

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork()
  let stopping = false
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} died (${signal || code}): stopping`)
      process.kill(process.pid, 'SIGTERM')
    }
  })
  process.once('SIGTERM', () => {
    stopping = true
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM')
    cluster.disconnect(() => process.exit(0))
  })
} else {
  start().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}

async function start () {
  const fastify = require('fastify')
  const postgres = require('postgres')

  const sql = postgres(process.env.DATABASE_URL, {
    max: Number(process.env.POOL_SIZE || 16),
    types: { bigint: postgres.BigInt }, // ids are int8: exact, not strings
  })

  // The statement bookstore-books prepares (books/books-store.c, BOOKS_SQL_GET),
  // with the column names a row object needs.
  const getBook = (id) => sql`
    SELECT id, title, author, description, price::text AS price, active,
           to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
           to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
    FROM books WHERE id = ${id}`

  const book = {
    type: 'object',
    properties: {
      id: { type: 'integer' },
      title: { type: 'string' },
      author: { type: 'string' },
      description: { type: ['string', 'null'] },
      price: { type: 'string' },
      active: { type: 'boolean' },
      created_at: { type: 'string' },
      updated_at: { type: 'string' },
    },
  }

  const app = fastify({ logger: false })

  // JSON.stringify and fast-json-stringify write U+007F (DEL) as it is;
  // json-glib, which bookstore-books uses, escapes it. Only rows written
  // before Books refused control characters can hold one.
  app.addHook('onSend', (request, reply, payload, done) => {
    done(null, typeof payload === 'string' && payload.includes('\x7f')
      ? payload.replaceAll('\x7f', '\\u007f')
      : payload)
  })

  const maxId = 9223372036854775807n
  const badId = {
    error: 'VALIDATION_ERROR',
    message: 'id must be a positive integer no larger than 9223372036854775807',
  }

  app.get('/v1/books/:id', { schema: { response: { 200: book } } }, async (request, reply) => {
    const text = request.params.id
    if (!/^[0-9]+$/.test(text) || BigInt(text) < 1n || BigInt(text) > maxId) {
      return reply.code(400).send(badId)
    }
    const [row] = await getBook(BigInt(text))
    if (row === undefined) {
      return reply.code(404).send({ error: 'NOT_FOUND', message: 'book not found' })
    }
    if (!row.active) {
      return reply.code(410).send({ error: 'GONE', message: 'book was deleted' })
    }
    return row
  })

  app.get('/health', async (request, reply) => {
    try {
      await sql`SELECT 1`
      return { status: 'healthy', services: { database: 'healthy' } }
    } catch (err) {
      return reply.code(503).send({ status: 'unhealthy', services: { database: 'unhealthy' } })
    }
  })

  process.once('SIGTERM', async () => {
    await app.close()
    await sql.end({ timeout: 1 })
    process.exit(0)
  })

  await app.listen({ port: Number(process.env.PORT), host: process.env.BIND_ADDRESS || '127.0.0.1' })
}
