package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// magic opens every Bolt connection.
var magic = []byte{0x60, 0x60, 0xB0, 0x17}

// version is a Bolt protocol version.
type version struct{ major, minor byte }

func (v version) atLeast(major, minor byte) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

func (v version) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// supported are the versions the proxy speaks, highest first: 5.8 down to
// 5.0, and 4.4. The manifest-style handshake (major 0xFF) is declined, so
// drivers that offer it fall back to the classic proposals.
var supported = []version{{5, 8}, {5, 7}, {5, 6}, {5, 5}, {5, 4}, {5, 3}, {5, 2}, {5, 1}, {5, 0}, {4, 4}}

// readProposals reads the preamble and the four proposals and returns the
// supported versions the client offers, highest first.
func readProposals(r io.Reader) ([]version, error) {
	var hs [20]byte
	if _, err := io.ReadFull(r, hs[:]); err != nil {
		return nil, err
	}
	if !bytes.Equal(hs[:4], magic) {
		return nil, errors.New("bolt: not a Bolt client (bad preamble)")
	}
	offered := map[version]bool{}
	for i := 4; i < 20; i += 4 {
		back, minor, major := hs[i+1], hs[i+2], hs[i+3]
		for m := int(minor); m >= 0 && m >= int(minor)-int(back); m-- {
			offered[version{major, byte(m)}] = true
		}
	}
	var out []version
	for _, v := range supported {
		if offered[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// proposals encodes versions (highest first) as at most four ranges.
func proposals(versions []version) []byte {
	out := append([]byte(nil), magic...)
	n := 0
	for i := 0; i < len(versions) && n < 4; n++ {
		top := versions[i]
		j := i
		for j+1 < len(versions) && versions[j+1].major == top.major && versions[j+1].minor == versions[j].minor-1 {
			j++
		}
		out = append(out, 0, top.minor-versions[j].minor, top.minor, top.major)
		i = j + 1
	}
	for ; n < 4; n++ {
		out = append(out, 0, 0, 0, 0)
	}
	return out
}

// versionReply encodes a chosen version as the server's answer.
func versionReply(v version) []byte { return []byte{0, 0, v.minor, v.major} }

// parseVersionReply decodes the server's answer; ok is false for "none".
func parseVersionReply(b []byte) (v version, ok bool) {
	v = version{major: b[3], minor: b[2]}
	return v, v.major != 0
}
