// Package proxy owns pgcrypt-proxy's sockets: it accepts client connections,
// negotiates TLS and the startup handshake, opens the matching upstream
// connection, relays authentication unchanged, forwards cancel requests, and
// then runs the message loop of each session.
//
// A session relays every message as the bytes it read, batching writes and
// flushing only when the reading side has nothing more buffered, so
// pipelines and result sets cross the proxy in few system calls. Statement
// analysis and value transformation plug into the loop through the
// Transformer interface; without one the proxy is a transparent relay.
package proxy
