package wire

import (
	"encoding/binary"
	"io"
)

// Startup packet codes (the int32 after the length of an untyped packet).
const (
	CodeProtocol30    = 196608   // StartupMessage, protocol 3.0
	CodeProtocol32    = 196610   // StartupMessage, protocol 3.2
	CodeCancel        = 80877102 // CancelRequest
	CodeSSLRequest    = 80877103 // SSLRequest
	CodeGSSENCRequest = 80877104 // GSSENCRequest
)

// MaxStartupPacket is PostgreSQL's limit on a startup packet.
const MaxStartupPacket = 10000

// ReadStartup reads one untyped startup packet from src and returns its code
// and the whole packet, length prefix included, ready to be forwarded as is.
// It reads exactly the packet's bytes, nothing beyond.
func ReadStartup(src io.Reader) (code uint32, packet []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(src, hdr[:4]); err != nil {
		return 0, nil, err
	}
	l := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if l < 8 || l > MaxStartupPacket {
		return 0, nil, &ProtocolError{Length: l, Reason: "length out of range"}
	}
	packet = make([]byte, l)
	copy(packet, hdr[:4])
	if _, err := io.ReadFull(src, packet[4:]); err != nil {
		return 0, nil, unexpected(err)
	}
	return binary.BigEndian.Uint32(packet[4:8]), packet, nil
}
