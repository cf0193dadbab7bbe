// Package chunk splits a document into overlapping windows of tokens.
//
// A token here is a word: a maximal run of letters, digits, apostrophes or
// joining punctuation inside a word (don't, e-mail, 3.5), or any other
// single non-space character (so punctuation counts as a token of its own).
// This is not a model tokenizer; it is deterministic, needs no vocabulary,
// and is close enough to size windows for retrieval. A chunk's text is the
// exact slice of the original text from its first to its last token, so
// formatting inside the window is kept.
package chunk

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Options size the windows.
type Options struct {
	Size    int // tokens per chunk, > 0
	Overlap int // tokens shared by consecutive chunks, 0 <= Overlap < Size
}

// DefaultOptions are the windows ragcore uses unless configured otherwise.
var DefaultOptions = Options{Size: 200, Overlap: 40}

// Chunk is one window of a document.
type Chunk struct {
	Index  int    // position of the chunk in the document, from 0
	Text   string // the original text of the window
	Tokens int    // number of tokens in the window
}

// Token is a token's byte span in the text.
type Token struct{ Start, End int }

// Tokenize returns the tokens of text in order.
func Tokenize(text string) []Token {
	var toks []Token
	i := 0
	for i < len(text) {
		r, n := utf8.DecodeRuneInString(text[i:])
		switch {
		case unicode.IsSpace(r):
			i += n
		case isWord(r):
			start := i
			i += n
			for i < len(text) {
				r, n = utf8.DecodeRuneInString(text[i:])
				if isWord(r) {
					i += n
					continue
				}
				// joining punctuation stays inside a word when a word rune follows
				if isJoin(r) && i+n < len(text) {
					if next, _ := utf8.DecodeRuneInString(text[i+n:]); isWord(next) {
						i += n
						continue
					}
				}
				break
			}
			toks = append(toks, Token{start, i})
		default:
			toks = append(toks, Token{i, i + n})
			i += n
		}
	}
	return toks
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

func isJoin(r rune) bool { return r == '\'' || r == '’' || r == '-' || r == '.' }

// Split cuts text into windows of o.Size tokens, each starting
// o.Size-o.Overlap tokens after the previous one. A text without tokens
// yields no chunks; the last window may be shorter.
func Split(text string, o Options) ([]Chunk, error) {
	if o.Size <= 0 || o.Overlap < 0 || o.Overlap >= o.Size {
		return nil, fmt.Errorf("chunk: invalid options size=%d overlap=%d (want size > 0 and 0 <= overlap < size)", o.Size, o.Overlap)
	}
	toks := Tokenize(text)
	var out []Chunk
	step := o.Size - o.Overlap
	for start := 0; start < len(toks); start += step {
		end := min(start+o.Size, len(toks))
		out = append(out, Chunk{
			Index:  len(out),
			Text:   text[toks[start].Start:toks[end-1].End],
			Tokens: end - start,
		})
		if end == len(toks) {
			break
		}
	}
	return out, nil
}
