package packstream

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWireForms checks encodings against the PackStream specification's
// examples, both ways.
func TestWireForms(t *testing.T) {
	tests := []struct {
		name  string
		value any
		wire  string
	}{
		{"null", nil, "C0"},
		{"true", true, "C3"},
		{"false", false, "C2"},
		{"tiny int", int64(42), "2A"},
		{"tiny negative", int64(-16), "F0"},
		{"int8", int64(-17), "C8 EF"},
		{"int16", int64(1234), "C9 04 D2"},
		{"int32", int64(-2147483648), "CA 80 00 00 00"},
		{"int64", int64(math.MaxInt64), "CB 7F FF FF FF FF FF FF FF"},
		{"float", 1.23, "C1 3F F3 AE 14 7A E1 47 AE"},
		{"empty string", "", "80"},
		{"tiny string", "A", "81 41"},
		{"string8", strings.Repeat("a", 16), "D0 10" + strings.Repeat("61", 16)},
		{"unicode string", "Größenmaßstäbe", "D0 12 47 72 C3 B6 C3 9F 65 6E 6D 61 C3 9F 73 74 C3 A4 62 65"},
		{"bytes", []byte{1, 2, 3}, "CC 03 01 02 03"},
		{"empty list", []any{}, "90"},
		{"list", []any{int64(1), int64(2), int64(3)}, "93 01 02 03"},
		{"map", &Map{Keys: []string{"one"}, Values: []any{"eins"}}, "A1 83 6F 6E 65 84 65 69 6E 73"},
		{"node 5.x", &Structure{Tag: TagNode, Fields: []any{int64(1), []any{"Person"}, &Map{Keys: []string{}, Values: []any{}}, "4:x:1"}},
			"B4 4E 01 91 86 50 65 72 73 6F 6E A0 85 34 3A 78 3A 31"},
		{"point2d", &Structure{Tag: TagPoint2D, Fields: []any{int64(7203), 1.0, 2.0}}, "B3 58 C9 1C 23 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00"},
		{"date", &Structure{Tag: TagDate, Fields: []any{int64(19000)}}, "B1 44 C9 4A 38"},
		{"duration", &Structure{Tag: TagDuration, Fields: []any{int64(1), int64(2), int64(3), int64(4)}}, "B4 45 01 02 03 04"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := mustHex(t, tt.wire)
			got, err := Append(nil, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wire) {
				t.Errorf("encode: got % X, want % X", got, wire)
			}
			// Wrapped in a list so that structures are decoded as values.
			back, err := Decode(append([]byte{0x91}, wire...), DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.([]any)[0], tt.value) {
				t.Errorf("decode: got %#v, want %#v", back.([]any)[0], tt.value)
			}
		})
	}
}

// TestAllStructures round-trips every value structure in its Bolt 4.4 and
// 5.x shapes inside a RECORD-like message.
func TestAllStructures(t *testing.T) {
	props := &Map{Keys: []string{"name"}, Values: []any{"x"}}
	node4 := &Structure{Tag: TagNode, Fields: []any{int64(1), []any{"A"}, props}}
	node5 := &Structure{Tag: TagNode, Fields: []any{int64(1), []any{"A"}, props, "e1"}}
	values := []any{
		node4, node5,
		&Structure{Tag: TagRelationship, Fields: []any{int64(9), int64(1), int64(2), "R", props}},
		&Structure{Tag: TagRelationship, Fields: []any{int64(9), int64(1), int64(2), "R", props, "r9", "e1", "e2"}},
		&Structure{Tag: TagUnboundRelationship, Fields: []any{int64(9), "R", props}},
		&Structure{Tag: TagUnboundRelationship, Fields: []any{int64(9), "R", props, "r9"}},
		&Structure{Tag: TagPath, Fields: []any{[]any{node5, node5}, []any{&Structure{Tag: TagUnboundRelationship, Fields: []any{int64(9), "R", props, "r9"}}}, []any{int64(1), int64(1)}}},
		&Structure{Tag: TagDate, Fields: []any{int64(-1)}},
		&Structure{Tag: TagTime, Fields: []any{int64(3600_000_000_000), int64(3600)}},
		&Structure{Tag: TagLocalTime, Fields: []any{int64(1)}},
		&Structure{Tag: TagDateTime, Fields: []any{int64(1700000000), int64(5), int64(-3600)}},
		&Structure{Tag: TagDateTimeZoneID, Fields: []any{int64(1700000000), int64(5), "Europe/Paris"}},
		&Structure{Tag: TagLegacyDateTime, Fields: []any{int64(1700000000), int64(5), int64(7200)}},
		&Structure{Tag: TagLegacyDateTimeZone, Fields: []any{int64(1700000000), int64(5), "UTC"}},
		&Structure{Tag: TagLocalDateTime, Fields: []any{int64(1700000000), int64(5)}},
		&Structure{Tag: TagDuration, Fields: []any{int64(14), int64(2), int64(3), int64(4)}},
		&Structure{Tag: TagPoint2D, Fields: []any{int64(4326), 1.5, 2.5}},
		&Structure{Tag: TagPoint3D, Fields: []any{int64(4979), 1.5, 2.5, 3.5}},
	}
	msg := &Structure{Tag: 0x71, Fields: []any{values}}
	wire, err := Append(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeStructure(wire, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, msg) {
		t.Errorf("round trip changed the message:\n got %#v\nwant %#v", back, msg)
	}
}

func TestDecodeRefuses(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, 100)
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"truncated string", []byte{0x85, 'a'}, ErrTruncated},
		{"list longer than the data", []byte{0xD6, 0x7F, 0xFF, 0xFF, 0xFF}, ErrTruncated},
		{"map longer than the data", []byte{0xDA, 0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x80}, ErrTruncated},
		{"bytes longer than the data", []byte{0xCE, 0x7F, 0xFF, 0xFF, 0xFF}, ErrTruncated},
		{"too deep", append(deep, 0xC0), ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.wire, DefaultLimits); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	for name, wire := range map[string][]byte{
		"unknown marker":         {0xC4},
		"non-string map key":     {0xA1, 0x01, 0x01},
		"trailing bytes":         {0xC0, 0xC0},
		"unknown nested struct":  {0x91, 0xB1, 0x01, 0x01},
		"node with wrong fields": {0x91, 0xB2, 0x4E, 0x01, 0x90},
	} {
		if _, err := Decode(wire, DefaultLimits); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestMap(t *testing.T) {
	m := &Map{}
	m.Set("a", int64(1))
	m.Set("b", int64(2))
	m.Set("a", int64(3))
	m.Delete("b")
	if v, ok := m.Get("a"); !ok || v != int64(3) || len(m.Keys) != 1 {
		t.Errorf("map = %#v", m)
	}
}
