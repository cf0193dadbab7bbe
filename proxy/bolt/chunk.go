package bolt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxChunk is the largest chunk the framing can express.
const maxChunk = 0xFFFF

// ErrMessageTooLarge is returned for a message above the configured bound.
var ErrMessageTooLarge = errors.New("bolt: message larger than the limit")

// messageReader reassembles chunked Bolt messages. Empty chunks between
// messages (NOOP keep-alives) are skipped.
type messageReader struct {
	r   *bufio.Reader
	max int
}

func newMessageReader(r io.Reader, maxMessage int) *messageReader {
	return &messageReader{r: bufio.NewReaderSize(r, 32<<10), max: maxMessage}
}

// read returns the next message. The slice is newly allocated.
func (m *messageReader) read() ([]byte, error) {
	var msg []byte
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(m.r, hdr[:]); err != nil {
			if len(msg) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 {
			if len(msg) == 0 {
				continue // NOOP
			}
			return msg, nil
		}
		if len(msg)+n > m.max {
			return nil, fmt.Errorf("%w (%d bytes)", ErrMessageTooLarge, m.max)
		}
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(m.r, msg[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// appendChunked appends msg to buf as chunks followed by the end marker.
func appendChunked(buf, msg []byte) []byte {
	for len(msg) > 0 {
		n := min(len(msg), maxChunk)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
		buf = append(buf, msg[:n]...)
		msg = msg[n:]
	}
	return append(buf, 0, 0)
}
