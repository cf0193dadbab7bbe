package redis

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// loadTestTable loads the key specs of the Redis version the golden files
// were recorded against.
func loadTestTable(t testing.TB) *KeySpecTable {
	t.Helper()
	raw, err := os.ReadFile("testdata/command-redis-7.0.resp")
	if err != nil {
		t.Fatal(err)
	}
	table, err := LoadKeySpecTable(raw)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestRewriteCommandGolden plans every command of testdata/rewrite.txt (one
// per line, arguments separated by spaces, Go-quoted when they need to be)
// for tenant "acme" and compares what reaches the upstream, or the refusal,
// with testdata/rewrite.golden. Run with -update to accept a change.
func TestRewriteCommandGolden(t *testing.T) {
	r := newCommandRewriter(loadTestTable(t), DefaultKeyPrefix, 0)
	sc := newTenantScope(DefaultKeyPrefix, "acme")
	in, err := os.Open("testdata/rewrite.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var got bytes.Buffer
	var p plan
	scanner := bufio.NewScanner(in)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			got.WriteString(line + "\n")
			continue
		}
		args, err := splitArgs(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		r.rewriteCommand(sc, args, &p)
		fmt.Fprintf(&got, "%s\n  => %s\n", line, describePlan(&p, sc))
	}
	if *update {
		if err := os.WriteFile("testdata/rewrite.golden", got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("testdata/rewrite.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		gotLines, wantLines := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gotLines), len(wantLines)) {
			if gotLines[i] != wantLines[i] {
				t.Fatalf("line %d differs (run go test -run TestRewriteCommandGolden -update to accept):\ngot  %s\nwant %s", i+1, gotLines[i], wantLines[i])
			}
		}
		t.Fatalf("output has %d lines, golden file %d", len(gotLines), len(wantLines))
	}
}

// describePlan renders a plan as the upstream command, each argument
// Go-quoted, with the reply treatment; or as the refusal.
func describePlan(p *plan, sc *tenantScope) string {
	if p.refusal.reason != "" {
		return fmt.Sprintf("REFUSED %s: %s", p.refusal.reason, p.refusal.message)
	}
	if p.local != nil {
		return fmt.Sprintf("LOCAL %q", p.local)
	}
	v, _, err := parseValue(p.appendCommand(nil, sc.prefix))
	if err != nil {
		return "BROKEN " + err.Error()
	}
	parts := make([]string, len(v.elems))
	for i, e := range v.elems {
		parts[i] = strconv.Quote(string(e.text))
	}
	out := strings.Join(parts, " ")
	if p.reply != replyRaw {
		out += fmt.Sprintf("  [reply %s]", replyKindNames[p.reply])
	}
	return out
}

var replyKindNames = map[replyKind]string{
	replyNameList: "names", replyScan: "scan", replyFirstKey: "first-key", replyStreams: "streams",
	replyNumsub: "numsub", replyOK: "ok", replySubscribe: "subscribe",
}

// splitArgs splits a test line into arguments; an argument starting with a
// double quote is a Go string literal.
func splitArgs(line string) ([][]byte, error) {
	var args [][]byte
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			end := 1
			for end < len(line) && (line[end] != '"' || line[end-1] == '\\' && line[end-2] != '\\') {
				end++
			}
			s, err := strconv.Unquote(line[:end+1])
			if err != nil {
				return nil, err
			}
			args = append(args, []byte(s))
			line = line[end+1:]
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		args = append(args, []byte(word))
		line = rest
	}
	return args, nil
}

func TestEncodedCommandIsWhatWasPlanned(t *testing.T) {
	var p plan
	p.reset([][]byte{[]byte("MSET"), []byte("a"), []byte("1"), []byte(""), []byte("2")})
	p.keys = []int{1, 3}
	got := string(p.appendCommand(nil, []byte("t:x:")))
	want := "*5\r\n$4\r\nMSET\r\n$5\r\nt:x:a\r\n$1\r\n1\r\n$4\r\nt:x:\r\n$1\r\n2\r\n"
	if got != want {
		t.Errorf("appendCommand = %q, want %q", got, want)
	}
}

func TestPlanDoesNotAllocateForPlainCommands(t *testing.T) {
	r := newCommandRewriter(loadTestTable(t), DefaultKeyPrefix, 0)
	sc := newTenantScope(DefaultKeyPrefix, "acme")
	args := [][]byte{[]byte("SET"), []byte("key"), []byte("value")}
	var p plan
	buf := make([]byte, 0, 256)
	r.rewriteCommand(sc, args, &p)
	allocs := testing.AllocsPerRun(100, func() {
		r.rewriteCommand(sc, args, &p)
		buf = p.appendCommand(buf[:0], sc.prefix)
	})
	if allocs != 0 {
		t.Errorf("planning and encoding SET allocates %.0f times per command", allocs)
	}
}

// TestCommandTreatmentTable lists how every command of the recorded Redis
// 7.0 table is treated, for review and for docs/redis.md: testdata/commands.golden.
func TestCommandTreatmentTable(t *testing.T) {
	table := loadTestTable(t)
	r := newCommandRewriter(table, DefaultKeyPrefix, 0)
	var got bytes.Buffer
	for _, name := range sortedCommandNames(table) {
		fmt.Fprintf(&got, "%-32s %s\n", name, r.treatment(name))
	}
	if *update {
		if err := os.WriteFile("testdata/commands.golden", got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("testdata/commands.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatal("command treatment changed (run go test -run TestCommandTreatmentTable -update and review the diff)")
	}
}

// treatment describes in a few words how the command (or "container|sub"
// subcommand) name is treated, for the documentation table.
func (r *commandRewriter) treatment(name string) string {
	container, _, isSub := strings.Cut(name, "|")
	info := r.table.commands[container]
	if isSub {
		info = info.subcommands[name]
	}
	if why, ok := refused[name]; ok {
		return "refused: " + why.message
	}
	if why, ok := refused[container]; ok && isSub {
		return "refused: " + why.message
	}
	if container == "client" && isSub && !clientSubcommands[name] {
		return "refused: reaches other clients' connections"
	}
	if _, ok := handlers[name]; ok {
		return "handled by the proxy"
	}
	switch name {
	case "auth", "hello", "quit", "reset":
		return "handled by the proxy (session)"
	}
	switch {
	case info.unusable != "":
		return "refused: " + info.unusable
	case len(info.keySpecs) == 0 && info.categories&serverWide != 0:
		return "refused: acts beyond the tenant's keys"
	case len(info.keySpecs) == 0:
		return "forwarded (no keys)"
	case replyKinds[name] != replyRaw:
		return "keys scoped; key names in the reply unscoped"
	}
	return "keys scoped"
}

// sortedCommandNames lists every command and subcommand, sorted.
func sortedCommandNames(t *KeySpecTable) []string {
	var names []string
	for name, info := range t.commands {
		if info.subcommands == nil {
			names = append(names, name)
		}
		for sub := range info.subcommands {
			names = append(names, sub)
		}
	}
	slices.Sort(names)
	return names
}
