package bolt

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestChunkRoundTrip(t *testing.T) {
	for _, size := range []int{1, 100, maxChunk, maxChunk + 1, 3*maxChunk + 7} {
		msg := bytes.Repeat([]byte{0xAB}, size)
		wire := appendChunked(nil, msg)
		// A NOOP before the message must be skipped.
		r := newMessageReader(bytes.NewReader(append([]byte{0, 0}, wire...)), 1<<20)
		got, err := r.read()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: got %d bytes, %v", size, len(got), err)
		}
		if _, err := r.read(); err != io.EOF {
			t.Errorf("size %d: after the message: %v, want EOF", size, err)
		}
	}
}

func TestChunkLimits(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"over the limit", appendChunked(nil, make([]byte, 2000)), ErrMessageTooLarge},
		{"truncated chunk", []byte{0x00, 0x10, 1, 2}, io.ErrUnexpectedEOF},
		{"missing end marker", []byte{0x00, 0x01, 1}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newMessageReader(bytes.NewReader(tt.wire), 1024).read()
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzChunkReader: arbitrary bytes never panic nor yield a message above
// the limit.
func FuzzChunkReader(f *testing.F) {
	f.Add(appendChunked(nil, []byte{0xB0, 0x0F}))
	f.Add([]byte{0, 0, 0, 2, 0xB0, 0x02, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newMessageReader(bytes.NewReader(data), 512)
		for {
			msg, err := r.read()
			if err != nil {
				return
			}
			if len(msg) > 512 || len(msg) == 0 {
				t.Fatalf("message of %d bytes", len(msg))
			}
		}
	})
}
