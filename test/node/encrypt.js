'use strict';

// node-postgres through pgcrypt-proxy's encryption, run by
// TestNodePostgresEncrypted (test/e2e/clients_encrypt_test.go) against a
// database with the seed's clients table whose policy columns the proxy
// encrypts (email deterministically). It reads the connection string from
// PGCRYPT_NODE_DSN, writes client rows with parameters, reads them back,
// prints one JSON line with what it saw and exits 0, or prints the failure
// and exits 1. The Go test then checks the rows straight in PostgreSQL.
// Run `npm ci --prefix test/node` first.

const { Client } = require('pg');

const dsn = process.env.PGCRYPT_NODE_DSN;
if (!dsn) {
  console.error('PGCRYPT_NODE_DSN is not set');
  process.exit(1);
}

const watchdog = setTimeout(() => {
  console.error('encrypt.js: timed out after 30s');
  process.exit(1);
}, 30000);

const COLUMNS = ['first_name', 'last_name', 'email', 'phone', 'address', 'medical_history',
  'emergency_contact_name', 'emergency_contact_phone'];

// The rows written; TestNodePostgresEncrypted expects exactly these.
const ROWS = [
  {
    first_name: 'Nöde Ünïcode 🐘', last_name: "D'Arcy \\ 日本", email: 'node-1@example.com',
    phone: null, address: '', medical_history: 'node history; '.repeat(80),
    emergency_contact_name: 'Emergency Contact', emergency_contact_phone: '+1 555 0100',
  },
  {
    first_name: 'Node Second', last_name: 'Second-Last', email: 'node-2@example.com',
    phone: '+1 555 0102', address: '2 Node Street', medical_history: null,
    emergency_contact_name: null, emergency_contact_phone: null,
  },
  {
    first_name: 'Node Third', last_name: 'Third-Last', email: 'node-3@example.com',
    phone: '+1 555 0103', address: null, medical_history: 'third history',
    emergency_contact_name: null, emergency_contact_phone: null,
  },
];

const SELECT = 'SELECT ' + COLUMNS.join(', ') + ' FROM clients';

let connections = 0;
const sessionErrors = [];
const errorsAfterEnd = [];
const ending = new WeakSet();

async function connect() {
  const client = new Client({
    connectionString: dsn,
    connectionTimeoutMillis: 10000,
    application_name: 'pgcrypt-node-encrypt',
  });
  client.on('error', (err) => {
    (ending.has(client) ? errorsAfterEnd : sessionErrors).push({ code: err.code || null, message: err.message });
  });
  await client.connect();
  connections++;
  return client;
}

function check(cond, what) {
  if (!cond) {
    throw new Error('check failed: ' + what);
  }
}

function sameRow(got, want) {
  return COLUMNS.every((c) => got[c] === want[c]);
}

function pick(row) {
  const out = {};
  for (const c of COLUMNS) {
    out[c] = row[c];
  }
  return out;
}

async function expectRejected(client, q) {
  try {
    await client.query(q);
  } catch (err) {
    check(err.code === '0A000', 'rejection of ' + q.text + ' gave ' + err.code + ' ' + err.message);
    return { code: err.code, message: err.message };
  }
  throw new Error('no error from ' + q.text);
}

async function main() {
  const out = { ok: false };
  const c = await connect();
  try {
    // workspaces is not a policy table: a plain simple query.
    const ws = (await c.query('SELECT id FROM workspaces LIMIT 1')).rows[0].id;

    // Two rows with all eight policy columns as parameters (text, NULL,
    // empty, non-ASCII, ~1 KB), in one transaction.
    out.ids = [];
    await c.query('BEGIN');
    for (const row of ROWS.slice(0, 2)) {
      const r = await c.query(
        'INSERT INTO clients (workspace_id, ' + COLUMNS.join(', ') + ') VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id',
        [ws, ...COLUMNS.map((col) => row[col])]);
      out.ids.push(r.rows[0].id);
    }
    await c.query('COMMIT');
    // The third with RETURNING of policy columns, decrypted on the way out.
    const third = ROWS[2];
    let r = await c.query(
      'INSERT INTO clients (workspace_id, first_name, last_name, email, medical_history) VALUES ($1, $2, $3, $4, $5) RETURNING id, first_name, email',
      [ws, third.first_name, third.last_name, third.email, third.medical_history]);
    out.ids.push(r.rows[0].id);
    out.returning = [{ first_name: r.rows[0].first_name, email: r.rows[0].email }];
    check(r.rows[0].first_name === third.first_name && r.rows[0].email === third.email, 'RETURNING: ' + JSON.stringify(r.rows[0]));

    // A Buffer parameter goes in binary format, and binary: true asks for
    // binary results: for text both are the plain UTF-8 bytes.
    r = await c.query({
      text: 'UPDATE clients SET phone = $1 WHERE email = $2 RETURNING phone',
      values: [Buffer.from(third.phone), third.email],
      binary: true,
    });
    check(r.rows.length === 1 && String(r.rows[0].phone) === third.phone, 'binary UPDATE ... RETURNING: ' + JSON.stringify(r.rows));
    out.binaryPhone = String(r.rows[0].phone);

    // Read back by id and by email.
    out.byId = [];
    out.byEmail = [];
    for (let i = 0; i < ROWS.length; i++) {
      r = await c.query(SELECT + ' WHERE id = $1', [out.ids[i]]);
      check(r.rows.length === 1 && sameRow(r.rows[0], ROWS[i]), 'by id ' + i + ': ' + JSON.stringify(r.rows));
      out.byId.push(pick(r.rows[0]));
      r = await c.query(SELECT + ' WHERE email = $1', [ROWS[i].email]);
      check(r.rows.length === 1 && sameRow(r.rows[0], ROWS[i]), 'by email ' + i + ': ' + JSON.stringify(r.rows));
      out.byEmail.push(pick(r.rows[0]));
    }
    r = await c.query('SELECT count(*)::int AS n FROM clients WHERE email IN ($1, $2, $3)', [ROWS[0].email, ROWS[2].email, 'nobody@example.com']);
    out.in = r.rows[0].n;

    // A named prepared statement, parsed once and executed twice.
    const byEmail = { name: 'client_by_email', text: 'SELECT id, last_name, phone FROM clients WHERE email = $1' };
    out.prepared = [];
    for (const row of ROWS.slice(0, 2)) {
      r = await c.query({ ...byEmail, values: [row.email] });
      check(r.rows.length === 1 && r.rows[0].last_name === row.last_name && r.rows[0].phone === row.phone,
        'prepared select: ' + JSON.stringify(r.rows));
      out.prepared.push(r.rows.map((x) => ({ last_name: x.last_name, phone: x.phone })));
    }
    // And a named INSERT ... RETURNING into legacy_notes (no associated data).
    const insNote = { name: 'insert_note', text: 'INSERT INTO legacy_notes (body) VALUES ($1) RETURNING body' };
    out.preparedInsert = [];
    for (const body of ['node note one', 'node note two ü']) {
      r = await c.query({ ...insNote, values: [body] });
      out.preparedInsert.push(r.rows[0].body);
    }
    r = await c.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name IN ('client_by_email', 'insert_note')");
    check(r.rows[0].n === 2, 'named statements are server-side prepared statements: ' + r.rows[0].n);

    // Rejected: ORDER BY a randomized column, in the simple and the
    // extended protocol; the client keeps working.
    out.rejected = [];
    out.rejected.push(await expectRejected(c, { text: 'SELECT id FROM clients ORDER BY first_name' }));
    out.rejected.push(await expectRejected(c, { text: 'SELECT id FROM clients WHERE email = $1 ORDER BY first_name', values: [ROWS[0].email] }));
    r = await c.query('SELECT first_name FROM clients WHERE email = $1', [ROWS[1].email]);
    out.after = r.rows[0].first_name;
    out.connections = connections;
  } finally {
    ending.add(c);
    await c.end();
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
    console.error('encrypt.js failed:', err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
