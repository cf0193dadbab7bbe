package redis

import (
	"slices"
	"testing"
)

func TestKeyPositionsFollowRedis(t *testing.T) {
	table := loadTestTable(t)
	tests := []struct {
		line string
		want []int
	}{
		{"GET k", []int{1}},
		{"MSET a 1 b 2", []int{1, 3}},
		{"ZUNIONSTORE d 2 a b WEIGHTS 1 2", []int{1, 3, 4}},
		{"XREAD COUNT 1 STREAMS a b c 0 0 0", []int{4, 5, 6}},
		{"XREADGROUP GROUP g c STREAMS s >", []int{5}},
		{"MIGRATE h 1 \"\" 0 1 KEYS a b", []int{3, 7, 8}},
		{"GEORADIUS s 0 0 1 km STORE d STOREDIST e", []int{1, 7, 9}},
		{"BLMPOP 0 2 a b LEFT", []int{3, 4}},
		{"EVAL s 0", nil},
		{"EVAL s 2 a b c", []int{3, 4}},
		{"OBJECT ENCODING k", []int{2}},
	}
	for _, tt := range tests {
		args, err := splitArgs(tt.line)
		if err != nil {
			t.Fatal(err)
		}
		info, ok := table.lookup(args)
		if !ok {
			t.Fatalf("%s: unknown", tt.line)
		}
		got, err := info.appendKeyPositions(nil, args)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: keys at %v, %v; want %v", tt.line, got, err, tt.want)
		}
	}
}

func TestKeySpecMismatchIsAnError(t *testing.T) {
	table := loadTestTable(t)
	for _, line := range []string{"ZUNIONSTORE d 3 a b", "ZUNIONSTORE d -1 a", "ZUNIONSTORE d x a", "BLMPOP 0 9 a LEFT"} {
		args, _ := splitArgs(line)
		info, _ := table.lookup(args)
		if _, err := info.appendKeyPositions(nil, args); err == nil {
			t.Errorf("%s: no error", line)
		}
	}
}

func TestLoadKeySpecTableRefusesGarbage(t *testing.T) {
	for _, in := range []string{"+OK\r\n", "-ERR unknown command\r\n", "*0\r\n", "*1\r\n:1\r\n", "*1\r\n*2\r\n$3\r\nget\r\n:2\r\n"} {
		if _, err := LoadKeySpecTable([]byte(in)); err == nil {
			t.Errorf("%q: loaded", in)
		}
	}
}

// searchKeyword must find exactly what Redis finds (db.c, keyword search),
// or a key would reach the server unprefixed.
func TestSearchKeywordMatchesRedis(t *testing.T) {
	args := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, a := range s {
			out[i] = []byte(a)
		}
		return out
	}
	tests := []struct {
		name      string
		args      [][]byte
		startFrom int
		want      int
		found     bool
	}{
		{"forward", args("cmd", "a", "KEYS", "k"), 1, 3, true},
		{"forward is case-insensitive", args("cmd", "keys", "k"), 1, 2, true},
		{"forward skips the last argument", args("cmd", "a", "KEYS"), 1, 0, false},
		{"backward", args("cmd", "KEYS", "k", "x"), -1, 2, true},
		{"backward reaches argument 1", args("cmd", "KEYS", "k"), -1, 2, true},
		{"backward from the end", args("cmd", "k", "x", "KEYS"), -1, 4, true},
		{"absent", args("cmd", "a", "b"), 1, 0, false},
		{"start beyond the arguments", args("cmd"), -5, 0, false},
	}
	for _, tt := range tests {
		got, found := searchKeyword(tt.args, "KEYS", tt.startFrom)
		if got != tt.want || found != tt.found {
			t.Errorf("%s: searchKeyword = %d, %v; want %d, %v", tt.name, got, found, tt.want, tt.found)
		}
	}
}
