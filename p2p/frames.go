package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Stream-handler frame markers (hivemind P2P.MESSAGE_MARKER / ERROR_MARKER).
const (
	// markerMessage: the payload is a request or response protobuf.
	markerMessage byte = 0x00
	// markerEnd: from the caller, the end of its requests (the payload is ignored); from the handler, an
	// RPCError.
	markerEnd byte = 0x01
)

// streamHeaderLen is the marker byte plus the 8-byte big-endian length.
const streamHeaderLen = 1 + 8

// maxUvarintLen is the longest uvarint that fits 64 bits.
const maxUvarintLen = binary.MaxVarintLen64

// memoryScope is the part of a libp2p resource scope frame readers charge payloads to.
type memoryScope interface {
	ReserveMemory(size int, prio uint8) error
	ReleaseMemory(size int)
}

// reservation is memory reserved in a scope for one payload; release returns it (once; nil-safe).
type reservation struct {
	scope memoryScope
	size  int
}

func (r *reservation) release() {
	if r != nil && r.scope != nil && r.size > 0 {
		r.scope.ReleaseMemory(r.size)
		r.size = 0
	}
}

// reserve charges n bytes to scope (nil: nothing to charge) before they are allocated.
func reserve(scope memoryScope, n int) (*reservation, error) {
	if scope == nil || n == 0 {
		return &reservation{}, nil
	}
	const priorityAlways = 255 // network.ReservationPriorityAlways: fail only past the hard limit
	if err := scope.ReserveMemory(n, priorityAlways); err != nil {
		return nil, fmt.Errorf("%w: %d-byte frame: %w", ErrResourceLimit, n, err)
	}
	return &reservation{scope: scope, size: n}, nil
}

// readDelimited reads one uvarint-length-prefixed frame from r. The length is checked against maxSize and
// charged to scope before the body is allocated. It returns io.EOF when r ends before the first byte,
// ErrTruncatedFrame when it ends inside the frame and ErrFrameTooLarge for a length over maxSize (or a
// varint over 64 bits). The caller releases the reservation when done with the body.
func readDelimited(r io.Reader, maxSize int, scope memoryScope) ([]byte, *reservation, error) {
	var (
		one    [1]byte
		length uint64
		shift  uint
	)
	for i := 0; ; i++ {
		if i == maxUvarintLen {
			return nil, nil, fmt.Errorf("%w: length varint longer than %d bytes", ErrFrameTooLarge, maxUvarintLen)
		}
		if _, err := io.ReadFull(r, one[:]); err != nil {
			if i == 0 {
				return nil, nil, err // io.EOF: no frame at all
			}
			return nil, nil, truncated("length prefix", err)
		}
		b := one[0]
		if i == maxUvarintLen-1 && b > 1 {
			return nil, nil, fmt.Errorf("%w: length varint overflows 64 bits", ErrFrameTooLarge)
		}
		length |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
		shift += 7
	}
	if length > uint64(maxSize) {
		return nil, nil, fmt.Errorf("%w: %d bytes announced, cap %d", ErrFrameTooLarge, length, maxSize)
	}
	res, err := reserve(scope, int(length))
	if err != nil {
		return nil, nil, err
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		res.release()
		return nil, nil, truncated(fmt.Sprintf("%d-byte body", length), err)
	}
	return body, res, nil
}

// appendStreamFrame appends marker || uint64 big-endian len(payload) || payload (hivemind send_protobuf).
func appendStreamFrame(dst []byte, marker byte, payload []byte) []byte {
	return append(appendStreamHeader(dst, marker, len(payload)), payload...)
}

// appendStreamHeader appends the 9-byte header of a frame with an n-byte payload.
func appendStreamHeader(dst []byte, marker byte, n int) []byte {
	return binary.BigEndian.AppendUint64(append(dst, marker), uint64(n))
}

// endOfStreamFrame returns hivemind's END_OF_STREAM: an empty RPCError with the end marker, 01 00×8.
func endOfStreamFrame() []byte { return appendStreamFrame(nil, markerEnd, nil) }

// readStreamFrame reads one stream-handler frame from r: the marker is checked first (ErrBadFrameMarker),
// then the length against maxSize (ErrFrameTooLarge) and the scope (ErrResourceLimit), all before the
// payload is allocated. It returns io.EOF when r ends cleanly between frames and ErrTruncatedFrame when
// it ends inside one.
func readStreamFrame(r io.Reader, maxSize int, scope memoryScope) (byte, []byte, *reservation, error) {
	var hdr [streamHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return 0, nil, nil, err // io.EOF: a clean end between frames
	}
	marker := hdr[0]
	if marker != markerMessage && marker != markerEnd {
		return 0, nil, nil, fmt.Errorf("%w: 0x%02x", ErrBadFrameMarker, marker)
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return 0, nil, nil, truncated("8-byte length", err)
	}
	length := binary.BigEndian.Uint64(hdr[1:])
	if length > uint64(maxSize) || length > math.MaxInt {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes announced, cap %d", ErrFrameTooLarge, length, maxSize)
	}
	res, err := reserve(scope, int(length))
	if err != nil {
		return 0, nil, nil, err
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(r, payload); err != nil {
		res.release()
		return 0, nil, nil, truncated(fmt.Sprintf("%d-byte payload", length), err)
	}
	return marker, payload, res, nil
}

// truncated turns a short read into ErrTruncatedFrame; other read errors (a reset, a deadline) are
// wrapped as they are.
func truncated(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended inside the %s", ErrTruncatedFrame, what)
	}
	return fmt.Errorf("p2p: reading the %s: %w", what, err)
}
