package cypher

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokenKind classifies a lexical token.
type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokQuotedIdent // `escaped identifier`
	tokString
	tokInteger
	tokFloat
	tokParam
	tokPunct
)

// token is one lexical token. For identifiers and strings text is the
// unescaped value; for numbers the source spelling; for punctuation the
// operator itself.
type token struct {
	kind tokenKind
	text string
	pos  int // byte offsets of the token in the source: [pos, end)
	end  int
}

// isKeyword reports whether t is the bare (unquoted) identifier kw, case
// insensitively. Quoted identifiers are never keywords.
func (t token) isKeyword(kw string) bool {
	return t.kind == tokIdent && strings.EqualFold(t.text, kw)
}

func (t token) is(punct string) bool { return t.kind == tokPunct && t.text == punct }

// maxQueryBytes bounds the statements the lexer accepts.
const maxQueryBytes = 1 << 20

// lex splits src into tokens. Comments are dropped.
func lex(src string) ([]token, error) {
	if len(src) > maxQueryBytes {
		return nil, fmt.Errorf("the query is longer than %d bytes", maxQueryBytes)
	}
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("the query is not valid UTF-8")
	}
	l := lexer{src: src}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		t.end = l.pos
		l.toks = append(l.toks, t)
		if t.kind == tokEOF {
			return l.toks, nil
		}
	}
}

type lexer struct {
	src  string
	pos  int
	toks []token
}

// Punctuation: two-character operators are matched first.
var twoCharPuncts = map[string]string{"..": "..", "<>": "<>", "!=": "!=", "<=": "<=", ">=": ">=", "=~": "=~", "+=": "+="}

const oneCharPuncts = "()[]{},.:;|&!%+-*/^=<>"

func (l *lexer) next() (token, error) {
	if err := l.skipSpaceAndComments(); err != nil {
		return token{}, err
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case c == '\'' || c == '"':
		s, err := l.lexString(c)
		return token{kind: tokString, text: s, pos: start}, err
	case c == '`':
		s, err := l.lexQuoted()
		return token{kind: tokQuotedIdent, text: s, pos: start}, err
	case c >= '0' && c <= '9', c == '.' && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]):
		return l.lexNumber()
	case c == '$':
		l.pos++
		if l.pos < len(l.src) && l.src[l.pos] == '`' {
			s, err := l.lexQuoted()
			return token{kind: tokParam, text: s, pos: start}, err
		}
		name := l.identRun()
		if name == "" {
			if l.pos < len(l.src) && l.src[l.pos] == '(' {
				return token{}, refusef(ReasonDynamicLabel, "dynamic labels and types $(...) are not allowed")
			}
			return token{}, syntaxErrorf(start, "a parameter name must follow $")
		}
		return token{kind: tokParam, text: name, pos: start}, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	if isIdentStart(r) {
		return token{kind: tokIdent, text: l.identRun(), pos: start}, nil
	}
	if l.pos+1 < len(l.src) {
		if p, ok := twoCharPuncts[l.src[l.pos:l.pos+2]]; ok {
			l.pos += 2
			return token{kind: tokPunct, text: p, pos: start}, nil
		}
	}
	if strings.IndexByte(oneCharPuncts, c) >= 0 {
		l.pos++
		return token{kind: tokPunct, text: l.src[start:l.pos], pos: start}, nil
	}
	return token{}, syntaxErrorf(start, "unexpected character %q", r)
}

func (l *lexer) skipSpaceAndComments() error {
	for l.pos < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[l.pos:])
		switch {
		case unicode.IsSpace(r):
			l.pos += size
		case strings.HasPrefix(l.src[l.pos:], "//"):
			end := strings.IndexByte(l.src[l.pos:], '\n')
			if end < 0 {
				l.pos = len(l.src)
			} else {
				l.pos += end + 1
			}
		case strings.HasPrefix(l.src[l.pos:], "/*"):
			end := strings.Index(l.src[l.pos+2:], "*/")
			if end < 0 {
				return syntaxErrorf(l.pos, "unterminated comment")
			}
			l.pos += end + 4
		default:
			return nil
		}
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }

func isIdentPart(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// identRun consumes identifier characters (letters, digits, _).
func (l *lexer) identRun() string {
	start := l.pos
	for l.pos < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[l.pos:])
		if !isIdentPart(r) {
			break
		}
		l.pos += size
	}
	return l.src[start:l.pos]
}

func (l *lexer) lexQuoted() (string, error) {
	start := l.pos
	l.pos++ // opening backtick
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == '`' {
			if l.pos+1 < len(l.src) && l.src[l.pos+1] == '`' {
				b.WriteByte('`')
				l.pos += 2
				continue
			}
			l.pos++
			if b.Len() == 0 {
				return "", syntaxErrorf(start, "empty quoted identifier")
			}
			return b.String(), nil
		}
		b.WriteByte(c)
		l.pos++
	}
	return "", syntaxErrorf(start, "unterminated quoted identifier")
}

func (l *lexer) lexString(quote byte) (string, error) {
	start := l.pos
	l.pos++
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch c {
		case quote:
			l.pos++
			return b.String(), nil
		case '\\':
			if l.pos+1 >= len(l.src) {
				return "", syntaxErrorf(start, "unterminated string")
			}
			esc := l.src[l.pos+1]
			l.pos += 2
			switch esc {
			case '\\', '\'', '"':
				b.WriteByte(esc)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u', 'U':
				n := 4
				if esc == 'U' {
					n = 8
				}
				if l.pos+n > len(l.src) {
					return "", syntaxErrorf(start, "bad unicode escape")
				}
				v, err := strconv.ParseUint(l.src[l.pos:l.pos+n], 16, 32)
				if err != nil || !utf8.ValidRune(rune(v)) {
					return "", syntaxErrorf(start, "bad unicode escape")
				}
				b.WriteRune(rune(v))
				l.pos += n
			default:
				return "", syntaxErrorf(l.pos-2, "unknown escape \\%c", esc)
			}
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return "", syntaxErrorf(start, "unterminated string")
}

func (l *lexer) lexNumber() (token, error) {
	start := l.pos
	src := l.src
	if strings.HasPrefix(src[l.pos:], "0x") || strings.HasPrefix(src[l.pos:], "0o") {
		l.pos += 2
		l.identRun()
		text := src[start:l.pos]
		if _, err := strconv.ParseInt(text, 0, 64); err != nil {
			return token{}, syntaxErrorf(start, "bad integer %q", text)
		}
		return token{kind: tokInteger, text: text, pos: start}, nil
	}
	kind := tokInteger
	for l.pos < len(src) && isDigit(src[l.pos]) {
		l.pos++
	}
	if l.pos+1 < len(src) && src[l.pos] == '.' && isDigit(src[l.pos+1]) {
		kind = tokFloat
		l.pos++
		for l.pos < len(src) && isDigit(src[l.pos]) {
			l.pos++
		}
	}
	if l.pos < len(src) && (src[l.pos] == 'e' || src[l.pos] == 'E') {
		p := l.pos + 1
		if p < len(src) && (src[p] == '+' || src[p] == '-') {
			p++
		}
		if p < len(src) && isDigit(src[p]) {
			kind = tokFloat
			l.pos = p
			for l.pos < len(src) && isDigit(src[l.pos]) {
				l.pos++
			}
		}
	}
	if l.pos < len(src) {
		if r, _ := utf8.DecodeRuneInString(src[l.pos:]); isIdentPart(r) {
			return token{}, syntaxErrorf(start, "bad number %q", src[start:l.pos+1])
		}
	}
	text := src[start:l.pos]
	if kind == tokInteger {
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			return token{}, syntaxErrorf(start, "integer %s is out of range", text)
		}
	} else if _, err := strconv.ParseFloat(text, 64); err != nil {
		return token{}, syntaxErrorf(start, "bad number %q", text)
	}
	return token{kind: kind, text: text, pos: start}, nil
}
