// Package packstream encodes and decodes PackStream, the binary format of
// Bolt messages: null, booleans, integers, floats, strings, bytes, lists,
// maps and structures, including the graph, temporal and spatial
// structures of Bolt 4.4 and 5.x.
//
// Decoding untrusted bytes is bounded: nesting depth is capped, and no
// container is allocated larger than the bytes that remain could hold, so a
// message costs memory proportional to its size.
package packstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Map is a PackStream map with its entries in wire order.
type Map struct {
	Keys   []string
	Values []any
}

// Get returns the value of key.
func (m *Map) Get(key string) (any, bool) {
	for i, k := range m.Keys {
		if k == key {
			return m.Values[i], true
		}
	}
	return nil, false
}

// Set replaces the value of key, or appends the entry.
func (m *Map) Set(key string, v any) {
	for i, k := range m.Keys {
		if k == key {
			m.Values[i] = v
			return
		}
	}
	m.Keys = append(m.Keys, key)
	m.Values = append(m.Values, v)
}

// Delete removes key.
func (m *Map) Delete(key string) {
	for i, k := range m.Keys {
		if k == key {
			m.Keys = append(m.Keys[:i], m.Keys[i+1:]...)
			m.Values = append(m.Values[:i], m.Values[i+1:]...)
			return
		}
	}
}

// Structure is a tagged structure: a Bolt message, or a value such as a
// Node (see the Tag constants).
type Structure struct {
	Tag    byte
	Fields []any
}

// Value structure tags.
const (
	TagNode                byte = 'N'
	TagRelationship        byte = 'R'
	TagUnboundRelationship byte = 'r'
	TagPath                byte = 'P'
	TagDate                byte = 'D'
	TagTime                byte = 'T'
	TagLocalTime           byte = 't'
	TagDateTime            byte = 'I' // Bolt 5: UTC seconds
	TagDateTimeZoneID      byte = 'i' // Bolt 5: UTC seconds
	TagLegacyDateTime      byte = 'F' // Bolt 4.4 without the utc patch
	TagLegacyDateTimeZone  byte = 'f'
	TagLocalDateTime       byte = 'd'
	TagDuration            byte = 'E'
	TagPoint2D             byte = 'X'
	TagPoint3D             byte = 'Y'
)

// valueStructures are the field counts a value structure may have; Node,
// Relationship and UnboundRelationship gained element ids in Bolt 5.
var valueStructures = map[byte][]int{
	TagNode:                {3, 4},
	TagRelationship:        {5, 8},
	TagUnboundRelationship: {3, 4},
	TagPath:                {3},
	TagDate:                {1},
	TagTime:                {2},
	TagLocalTime:           {1},
	TagDateTime:            {3},
	TagDateTimeZoneID:      {3},
	TagLegacyDateTime:      {3},
	TagLegacyDateTimeZone:  {3},
	TagLocalDateTime:       {2},
	TagDuration:            {4},
	TagPoint2D:             {3},
	TagPoint3D:             {4},
}

// Limits bound decoding.
type Limits struct {
	MaxDepth int // nesting of lists, maps and structures
}

// DefaultLimits suit Bolt traffic.
var DefaultLimits = Limits{MaxDepth: 64}

// Errors the decoder returns.
var (
	ErrTruncated = errors.New("packstream: truncated value")
	ErrTooDeep   = errors.New("packstream: value nested too deeply")
)

// Decode decodes one value that must fill data exactly. A structure at
// the top level (a Bolt message) may have any tag; nested structures must
// be known value structures with a valid number of fields.
func Decode(data []byte, lim Limits) (any, error) {
	d := decoder{data: data, lim: lim}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(data) {
		return nil, fmt.Errorf("packstream: %d trailing bytes", len(data)-d.pos)
	}
	return v, nil
}

// DecodeStructure decodes data as a structure (a Bolt message).
func DecodeStructure(data []byte, lim Limits) (*Structure, error) {
	v, err := Decode(data, lim)
	if err != nil {
		return nil, err
	}
	s, ok := v.(*Structure)
	if !ok {
		return nil, fmt.Errorf("packstream: expected a structure, got %T", v)
	}
	return s, nil
}

type decoder struct {
	data []byte
	pos  int
	lim  Limits
}

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.data)-d.pos {
		return nil, ErrTruncated
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

func (d *decoder) uint(size int) (uint64, error) {
	b, err := d.take(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

// count reads a size and checks that the remaining bytes could hold that
// many items of at least minItem bytes each.
func (d *decoder) count(size, minItem int) (int, error) {
	n, err := d.uint(size)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.data)-d.pos)/uint64(minItem) {
		return 0, ErrTruncated
	}
	return int(n), nil
}

func (d *decoder) value(depth int) (any, error) {
	if depth > d.lim.MaxDepth {
		return nil, ErrTooDeep
	}
	b, err := d.take(1)
	if err != nil {
		return nil, err
	}
	m := b[0]
	switch {
	case m < 0x80:
		return int64(m), nil
	case m >= 0xF0:
		return int64(int8(m)), nil
	case m >= 0x80 && m <= 0x8F:
		return d.str(int(m & 0x0F))
	case m >= 0x90 && m <= 0x9F:
		return d.list(int(m&0x0F), depth)
	case m >= 0xA0 && m <= 0xAF:
		return d.dict(int(m&0x0F), depth)
	case m >= 0xB0 && m <= 0xBF:
		return d.structure(int(m&0x0F), depth)
	}
	switch m {
	case 0xC0:
		return nil, nil
	case 0xC1:
		u, err := d.uint(8)
		return math.Float64frombits(u), err
	case 0xC2:
		return false, nil
	case 0xC3:
		return true, nil
	case 0xC8:
		u, err := d.uint(1)
		return int64(int8(u)), err
	case 0xC9:
		u, err := d.uint(2)
		return int64(int16(u)), err
	case 0xCA:
		u, err := d.uint(4)
		return int64(int32(u)), err
	case 0xCB:
		u, err := d.uint(8)
		return int64(u), err
	case 0xCC, 0xCD, 0xCE:
		n, err := d.count(1<<(m-0xCC), 1)
		if err != nil {
			return nil, err
		}
		raw, err := d.take(n)
		return append([]byte(nil), raw...), err
	case 0xD0, 0xD1, 0xD2:
		n, err := d.count(1<<(m-0xD0), 1)
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xD4, 0xD5, 0xD6:
		n, err := d.count(1<<(m-0xD4), 1)
		if err != nil {
			return nil, err
		}
		return d.list(n, depth)
	case 0xD8, 0xD9, 0xDA:
		n, err := d.count(1<<(m-0xD8), 2)
		if err != nil {
			return nil, err
		}
		return d.dict(n, depth)
	}
	return nil, fmt.Errorf("packstream: unknown marker 0x%02X", m)
}

func (d *decoder) str(n int) (string, error) {
	b, err := d.take(n)
	return string(b), err
}

func (d *decoder) list(n, depth int) ([]any, error) {
	if n > len(d.data)-d.pos {
		return nil, ErrTruncated
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (d *decoder) dict(n, depth int) (*Map, error) {
	if n > (len(d.data)-d.pos)/2 {
		return nil, ErrTruncated
	}
	m := &Map{Keys: make([]string, n), Values: make([]any, n)}
	for i := range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("packstream: map key is %T, not a string", k)
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m.Keys[i], m.Values[i] = key, v
	}
	return m, nil
}

func (d *decoder) structure(n, depth int) (*Structure, error) {
	tag, err := d.take(1)
	if err != nil {
		return nil, err
	}
	if depth > 0 {
		counts, known := valueStructures[tag[0]]
		if !known {
			return nil, fmt.Errorf("packstream: unknown structure tag 0x%02X", tag[0])
		}
		valid := false
		for _, c := range counts {
			valid = valid || c == n
		}
		if !valid {
			return nil, fmt.Errorf("packstream: structure 0x%02X with %d fields", tag[0], n)
		}
	}
	fields, err := d.list(n, depth)
	if err != nil {
		return nil, err
	}
	return &Structure{Tag: tag[0], Fields: fields}, nil
}

// Append encodes v after buf. v may be nil, bool, any Go integer, float32
// or float64, string, []byte, []any, []string, *Map, map[string]any
// (written in no particular order) or *Structure.
func Append(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, 0xC0), nil
	case bool:
		if v {
			return append(buf, 0xC3), nil
		}
		return append(buf, 0xC2), nil
	case int:
		return appendInt(buf, int64(v)), nil
	case int8:
		return appendInt(buf, int64(v)), nil
	case int16:
		return appendInt(buf, int64(v)), nil
	case int32:
		return appendInt(buf, int64(v)), nil
	case int64:
		return appendInt(buf, v), nil
	case uint8:
		return appendInt(buf, int64(v)), nil
	case uint16:
		return appendInt(buf, int64(v)), nil
	case uint32:
		return appendInt(buf, int64(v)), nil
	case float32:
		return binary.BigEndian.AppendUint64(append(buf, 0xC1), math.Float64bits(float64(v))), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(buf, 0xC1), math.Float64bits(v)), nil
	case string:
		return append(appendHeader(buf, 0x80, 0xD0, len(v)), v...), nil
	case []byte:
		return append(appendHeader(buf, 0, 0xCC, len(v)), v...), nil
	case []string:
		buf = appendHeader(buf, 0x90, 0xD4, len(v))
		for _, s := range v {
			buf = append(appendHeader(buf, 0x80, 0xD0, len(s)), s...)
		}
		return buf, nil
	case []any:
		buf = appendHeader(buf, 0x90, 0xD4, len(v))
		for _, item := range v {
			var err error
			if buf, err = Append(buf, item); err != nil {
				return nil, err
			}
		}
		return buf, nil
	case *Map:
		buf = appendHeader(buf, 0xA0, 0xD8, len(v.Keys))
		for i, k := range v.Keys {
			buf = append(appendHeader(buf, 0x80, 0xD0, len(k)), k...)
			var err error
			if buf, err = Append(buf, v.Values[i]); err != nil {
				return nil, err
			}
		}
		return buf, nil
	case map[string]any:
		m := &Map{}
		for k, val := range v {
			m.Keys, m.Values = append(m.Keys, k), append(m.Values, val)
		}
		return Append(buf, m)
	case *Structure:
		if len(v.Fields) > 15 {
			return nil, fmt.Errorf("packstream: structure with %d fields", len(v.Fields))
		}
		buf = append(buf, 0xB0|byte(len(v.Fields)), v.Tag)
		for _, f := range v.Fields {
			var err error
			if buf, err = Append(buf, f); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
	return nil, fmt.Errorf("packstream: cannot encode %T", v)
}

func appendInt(buf []byte, v int64) []byte {
	switch {
	case v >= -16 && v <= 127:
		return append(buf, byte(int8(v)))
	case v >= math.MinInt8 && v <= math.MaxInt8:
		return append(buf, 0xC8, byte(int8(v)))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(buf, 0xC9), uint16(int16(v)))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(buf, 0xCA), uint32(int32(v)))
	}
	return binary.BigEndian.AppendUint64(append(buf, 0xCB), uint64(v))
}

// appendHeader writes a size header: tiny (when tiny is non-zero and n <
// 16), then 8, 16 or 32-bit sizes starting at marker8.
func appendHeader(buf []byte, tiny, marker8 byte, n int) []byte {
	switch {
	case tiny != 0 && n < 16:
		return append(buf, tiny|byte(n))
	case n <= math.MaxUint8:
		return append(buf, marker8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(buf, marker8+1), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(buf, marker8+2), uint32(n))
}
