package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressPlainLines(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, 2)
	p.start(0, "a.md")
	p.step("3 chunks")
	p.clear()
	p.start(1, "b.md")
	want := "[1/2] a.md\n  3 chunks\n[2/2] b.md\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestProgressBarOnATerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, total: 4}
	p.start(2, "c.md")
	p.step("embedded " + strings.Repeat("x", 200))
	if !strings.Contains(b.String(), "\r\x1b[K[############------------] 3/4 c.md: embedded x") {
		t.Errorf("bar not drawn in place: %q", b.String())
	}
	last := b.String()[strings.LastIndex(b.String(), "\r\x1b[K")+4:]
	if n := len([]rune(last)); n > lineWidth {
		t.Errorf("line is %d characters, over %d", n, lineWidth)
	}
	b.Reset()
	p.clear()
	p.clear()
	if b.String() != "\r\x1b[K" {
		t.Errorf("clear = %q, want one erase", b.String())
	}
}
