package bolt

import (
	"bytes"
	"reflect"
	"testing"
)

func handshakeBytes(p ...[4]byte) []byte {
	b := append([]byte(nil), magic...)
	for _, x := range p {
		b = append(b, x[:]...)
	}
	for len(b) < 20 {
		b = append(b, 0, 0, 0, 0)
	}
	return b
}

func TestReadProposals(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want []version
	}{
		{"go driver 5.28: manifest, 5.8-5.0, 4.4-4.2, 3.0",
			handshakeBytes([4]byte{0, 0, 1, 0xFF}, [4]byte{0, 8, 8, 5}, [4]byte{0, 2, 4, 4}, [4]byte{0, 0, 0, 3}),
			supported},
		{"4.4 only", handshakeBytes([4]byte{0, 0, 4, 4}), []version{{4, 4}}},
		{"5.2 and 5.4 exact", handshakeBytes([4]byte{0, 0, 2, 5}, [4]byte{0, 0, 4, 5}), []version{{5, 4}, {5, 2}}},
		{"nothing supported", handshakeBytes([4]byte{0, 0, 0, 3}, [4]byte{0, 0, 1, 0xFF}), nil},
		{"range below zero is clamped", handshakeBytes([4]byte{0, 9, 1, 5}), []version{{5, 1}, {5, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readProposals(bytes.NewReader(tt.wire))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := readProposals(bytes.NewReader(make([]byte, 20))); err == nil {
		t.Error("a bad preamble was accepted")
	}
}

func TestProposals(t *testing.T) {
	got := proposals(supported)
	want := handshakeBytes([4]byte{0, 8, 8, 5}, [4]byte{0, 0, 4, 4})
	if !bytes.Equal(got, want) {
		t.Errorf("got % X, want % X", got, want)
	}
	back, err := readProposals(bytes.NewReader(got))
	if err != nil || !reflect.DeepEqual(back, supported) {
		t.Errorf("proposals do not round-trip: %v %v", back, err)
	}
	gaps := []version{{5, 6}, {5, 4}, {5, 3}, {4, 4}}
	if back, _ := readProposals(bytes.NewReader(proposals(gaps))); !reflect.DeepEqual(back, gaps) {
		t.Errorf("gapped proposals do not round-trip: %v", back)
	}
}
