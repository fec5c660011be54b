// Package proxy owns pgcrypt-proxy's sockets: it accepts client connections,
// negotiates TLS and the startup handshake, opens the matching upstream
// connection, relays authentication unchanged, forwards cancel requests, and
// then runs the message loop of each session.
//
// A session has two directions, client to server (session.clientToServer)
// and server to client (session.serverToClient). Each relays messages as
// the bytes it read, batching writes and flushing only when its reader has
// nothing more buffered, so pipelines and result sets cross the proxy in
// few system calls. Sessions whose two connections are plain sockets run on
// an event loop (loop_linux.go): each direction is a coroutine that yields
// where a read or write would block, and one idle for Options.IdleRetire is
// retired and started afresh by its next message. Other sessions (TLS) run
// a goroutine per direction, with the same code.
//
// Without a Policy a session is a transparent relay. With one, the client
// side (frontend*.go) analyses each statement with package rewrite (cached
// by text and by shape), encrypts parameters, literals and COPY data of
// policy columns, and replaces a statement it cannot make correct by a
// poison statement that fails on the server, whose error the server side
// (backend*.go) swaps for the proxy's own; the server side decrypts rows
// and COPY data by the table OID and attribute number PostgreSQL reports.
// What each server message answers, and every count the rules are keyed
// by (groups, Syncs, runs, COPY), comes from the session's tracker
// (package internal/track), which the server side alone settles. What the
// session knows of the schema is a catalog read with the proxy's own query
// on the client's session (catalog.go), between the client's groups.
package proxy
