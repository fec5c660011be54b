'use strict';
// node-postgres smoke test, run through pgcrypt-proxy by TestNodePostgres
// (test/e2e/clients_test.go). It reads the connection string from
// PGCRYPT_NODE_DSN, exercises the protocol paths node-postgres uses, prints
// one JSON line with what it saw and exits 0, or prints the failure and
// exits 1. Run `npm ci --prefix test/node` first.

const { Client } = require('pg');

const dsn = process.env.PGCRYPT_NODE_DSN;
if (!dsn) {
  console.error('PGCRYPT_NODE_DSN is not set');
  process.exit(1);
}

// A hung proxy must fail the test, not stall it.
const watchdog = setTimeout(() => {
  console.error('smoke.js: timed out after 30s');
  process.exit(1);
}, 30000);

let connections = 0;
// Errors a client emits outside a query (the server or proxy ending the
// session), split by whether the client had asked to end it. Without a
// listener node-postgres would throw them and crash the process.
const sessionErrors = [];
const errorsAfterEnd = [];
const ending = new WeakSet();

async function connect() {
  const client = new Client({
    connectionString: dsn,
    connectionTimeoutMillis: 10000,
    application_name: 'pgcrypt-node-smoke',
  });
  client.on('error', (err) => {
    (ending.has(client) ? errorsAfterEnd : sessionErrors).push({ code: err.code || null, message: err.message });
  });
  await client.connect();
  connections++;
  return client;
}

async function end(client) {
  ending.add(client);
  await client.end();
}

function check(cond, what) {
  if (!cond) {
    throw new Error('check failed: ' + what);
  }
}

function waitForNotification(client, channel, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.removeListener('notification', onNotify);
      reject(new Error('no notification on ' + channel + ' within ' + ms + 'ms'));
    }, ms);
    function onNotify(msg) {
      if (msg.channel !== channel) {
        return;
      }
      clearTimeout(timer);
      client.removeListener('notification', onNotify);
      resolve(msg);
    }
    client.on('notification', onNotify);
  });
}

async function main() {
  const out = { ok: false };
  const a = await connect();
  const b = await connect();
  try {
    // Simple query protocol (no values): one statement, then two in one
    // Query message.
    let r = await a.query("SELECT 1 AS one, 'simple' AS s");
    check(r.rows.length === 1 && r.rows[0].one === 1 && r.rows[0].s === 'simple', 'simple query');
    out.simple = r.rows[0].s;
    const multi = await a.query('SELECT 1 AS x; SELECT 2 AS x');
    check(Array.isArray(multi) && multi.length === 2 && multi[1].rows[0].x === 2, 'multi-statement query');
    out.multiStatement = multi.map((res) => res.rows[0].x);

    // Extended protocol with parameters of several kinds.
    const unicode = 'héllo 日本 🐘';
    r = await a.query('SELECT $1::text AS t, $2::int AS i, $3::text AS n, $4::text AS u, $5::int8 + 1 AS big',
      ['text', 42, null, unicode, '9007199254740993']);
    const row = r.rows[0];
    check(row.t === 'text' && row.i === 42 && row.n === null && row.u === unicode && row.big === '9007199254740994',
      'parameterised query: ' + JSON.stringify(row));
    out.params = row;

    // A named prepared statement: parsed once, executed twice.
    const q1 = { name: 'q1', text: 'SELECT $1::int * 2 AS doubled, $2::text AS label', values: [21, 'first'] };
    const first = await a.query(q1);
    const second = await a.query({ name: 'q1', text: q1.text, values: [50, 'second'] });
    check(first.rows[0].doubled === 42 && second.rows[0].doubled === 100 && second.rows[0].label === 'second',
      'prepared statement');
    out.prepared = [first.rows[0].doubled, second.rows[0].doubled];
    const ps = await a.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'q1'");
    check(ps.rows[0].n === 1, 'q1 is a server-side prepared statement');

    // Transactions: one rolled back, one committed.
    await a.query('CREATE TEMP TABLE smoke (id int PRIMARY KEY, note text)');
    await a.query('BEGIN');
    await a.query('INSERT INTO smoke VALUES ($1, $2)', [1, 'rolled back']);
    await a.query('ROLLBACK');
    await a.query('BEGIN');
    await a.query('INSERT INTO smoke VALUES ($1, $2), ($3, $4)', [2, 'committed', 3, null]);
    await a.query('COMMIT');
    r = await a.query('SELECT id, note FROM smoke ORDER BY id');
    check(r.rows.length === 2 && r.rows[0].id === 2 && r.rows[1].note === null, 'transaction: ' + JSON.stringify(r.rows));
    out.tx = r.rows.map((x) => x.id);

    // A multi-row result.
    r = await a.query('SELECT g, repeat($2::text, g) AS s FROM generate_series(1, $1::int) g', [1000, 'x']);
    check(r.rows.length === 1000 && r.rows[999].s.length === 1000, 'multi-row result');
    out.rows = r.rows.length;

    // Errors in both protocols leave the client usable.
    const codes = [];
    for (const q of [{ text: 'SELECT 1/0' }, { text: 'SELECT $1::int / 0', values: [1] }]) {
      try {
        await a.query(q);
        throw new Error('no error from ' + q.text);
      } catch (err) {
        check(err.code === '22012', 'division by zero gave ' + err.code + ' ' + err.message);
        codes.push(err.code);
      }
    }
    // An error inside a transaction aborts it until ROLLBACK.
    await a.query('BEGIN');
    try {
      await a.query('INSERT INTO smoke VALUES (2, $1)', ['duplicate']);
      throw new Error('no duplicate key error');
    } catch (err) {
      check(err.code === '23505', 'duplicate key gave ' + err.code);
      codes.push(err.code);
    }
    try {
      await a.query('SELECT 1');
      throw new Error('no error in an aborted transaction');
    } catch (err) {
      check(err.code === '25P02', 'aborted transaction gave ' + err.code);
      codes.push(err.code);
    }
    await a.query('ROLLBACK');
    r = await a.query('SELECT $1::int + 1 AS n', [1]);
    check(r.rows[0].n === 2, 'client works after errors');
    out.errors = codes;
    out.afterError = r.rows[0].n;

    // LISTEN/NOTIFY between the two clients, in both protocols.
    await b.query('LISTEN smoke_channel');
    let pending = waitForNotification(b, 'smoke_channel', 10000);
    await a.query("NOTIFY smoke_channel, 'payload one'");
    const n1 = await pending;
    pending = waitForNotification(b, 'smoke_channel', 10000);
    await a.query('SELECT pg_notify($1, $2)', ['smoke_channel', unicode]);
    const n2 = await pending;
    check(n1.payload === 'payload one' && n2.payload === unicode, 'notification payloads');
    const pid = await a.query('SELECT pg_backend_pid() AS pid');
    check(n1.processId === pid.rows[0].pid, 'notification sender pid');
    out.notify = [n1.payload, n2.payload];

    r = await a.query('SHOW server_version_num');
    out.serverVersionNum = Number(r.rows[0].server_version_num);
    out.connections = connections;
  } finally {
    await Promise.allSettled([end(a), end(b)]);
  }
  check(sessionErrors.length === 0, 'client errors outside queries: ' + JSON.stringify(sessionErrors));
  out.errorsAfterEnd = errorsAfterEnd;
  out.ok = true;
  return out;
}

main().then(
  (out) => {
    clearTimeout(watchdog);
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(0);
  },
  (err) => {
    clearTimeout(watchdog);
    console.error('smoke.js failed:', err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
