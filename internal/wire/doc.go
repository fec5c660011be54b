// Package wire frames PostgreSQL protocol messages on a byte stream.
//
// It knows the envelope of every message (a type byte, then a big-endian
// int32 length that counts itself but not the type byte, then the body) and
// the untyped startup packets (SSLRequest, GSSENCRequest, CancelRequest,
// StartupMessage). It does not decode message bodies: the proxy relays most
// messages as the bytes it read and hands only the few it must inspect to
// github.com/jackc/pgx/v5/pgproto3.
//
// Reader and Writer do no socket handling of their own; they wrap any
// io.Reader and io.Writer. Every length read from a peer is checked against
// a limit before anything is allocated, so a hostile or broken peer gets an
// error, never a panic or an unbounded allocation.
package wire
