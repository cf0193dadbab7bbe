package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// progress reports a long ingest: on a terminal one line redrawn in place,
// with a bar; otherwise plain lines, one per step, for logs and pipes.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	done  int
	file  string
	drawn bool // a bar is on the terminal's current line
}

// barWidth is the bar's width in characters; lineWidth bounds the whole line
// so it never wraps (and so never scrolls) on an ordinary terminal.
const (
	barWidth  = 24
	lineWidth = 100
)

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// start begins document i (0-based) of the total.
func (p *progress) start(i int, file string) {
	p.done, p.file = i, file
	if !p.tty {
		fmt.Fprintf(p.w, "[%d/%d] %s\n", i+1, p.total, file)
		return
	}
	p.draw("")
}

// step reports one step of the current document.
func (p *progress) step(msg string) {
	if !p.tty {
		fmt.Fprintln(p.w, "  "+msg)
		return
	}
	p.draw(msg)
}

// clear removes the bar before other output is written to the terminal.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

func (p *progress) draw(msg string) {
	filled := 0
	if p.total > 0 {
		filled = barWidth * p.done / p.total
	}
	line := fmt.Sprintf("[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), p.done+1, p.total, p.file)
	if msg != "" {
		line += ": " + msg
	}
	if r := []rune(line); len(r) > lineWidth {
		line = string(r[:lineWidth-1]) + "…"
	}
	fmt.Fprint(p.w, "\r\x1b[K"+line)
	p.drawn = true
}
