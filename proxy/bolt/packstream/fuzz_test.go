package packstream

import (
	"reflect"
	"testing"
)

// FuzzDecode: no input panics or allocates beyond its size, and whatever
// decodes re-encodes to bytes that decode to the same value.
func FuzzDecode(f *testing.F) {
	for _, seed := range [][]byte{
		{0xB1, 0x71, 0x91, 0xB4, 0x4E, 0x01, 0x91, 0x81, 0x41, 0xA0, 0x81, 0x65},
		{0xA1, 0x81, 0x61, 0xD4, 0x02, 0x01, 0xC1, 0, 0, 0, 0, 0, 0, 0, 0},
		{0xB3, 0x10, 0x85, 'R', 'E', 'T', 'U', 'R', 0xA0, 0xA0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data, DefaultLimits)
		if err != nil {
			return
		}
		again, err := Append(nil, v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := Decode(again, DefaultLimits)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if !reflect.DeepEqual(v, back) && !hasNaN(v) {
			t.Fatalf("round trip changed %#v into %#v", v, back)
		}
	})
}

func hasNaN(v any) bool {
	switch v := v.(type) {
	case float64:
		return v != v
	case []any:
		for _, x := range v {
			if hasNaN(x) {
				return true
			}
		}
	case *Map:
		return hasNaN(v.Values)
	case *Structure:
		return hasNaN(v.Fields)
	}
	return false
}
