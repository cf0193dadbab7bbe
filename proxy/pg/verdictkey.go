package pg

// Verdict keys. An application that inlines its values sends a new text for
// every statement (`... WHERE aid = 4711`, `... WHERE email = 'a@b.c'`), and
// a cache keyed by the whole text would parse every one of them. The
// guard's rules depend on names and structure, not on the values of
// literals, so texts that differ only in their numeric and string literals
// can share one verdict: the key is the text with each literal replaced by
// one byte naming its class. The one rule that reads a literal's value
// (SET ROLE 'none' is allowed, SET ROLE 'x' is not) marks its verdict
// ReadsLiterals, and such a verdict is cached under the whole text only.
// FuzzVerdictKey checks that every other verdict stays the same when the
// literals change.
//
// That is only sound if the key's tokenizer finds exactly the literals
// PostgreSQL's lexer finds, and no others: a digit inside a quoted
// identifier, or a quote inside a comment, must not be read as a literal.
// So the tokenizer reads a deliberately small subset of SQL in which that
// is unambiguous and gives up on everything else, which is then cached by
// its whole text: any byte outside printable ASCII and the whitespace
// PostgreSQL 15 and 17 agree on, a backslash, comments, dollar quoting,
// prefixed strings or identifiers (E'', B'', X'', N'', U&''), and strings
// continued on the next line ('a'<newline>'b' is one literal). Within the
// subset, FuzzVerdictKey compares it with PostgreSQL's own scanner
// (pg_query's) token by token.

const (
	// keyMasked starts every masked key. Statement texts arrive as C
	// strings and cannot contain a NUL, so a masked key never equals a
	// text cached whole.
	keyMasked = 0x00
	// maskInteger stands for an integer literal PostgreSQL reads as
	// ICONST (it fits in 32 bits).
	maskInteger = 0xFF
	// maskNumeric stands for any other numeric literal (FCONST: a decimal
	// point, an exponent, or an integer too large for 32 bits). Keeping the
	// classes apart keeps texts apart whose grammar differs: FETCH 5 parses,
	// FETCH 5.5 does not.
	maskNumeric = 0xFE
	// maskString stands for a string literal ('...', SCONST).
	maskString = 0xFD
)

// appendVerdictKey appends to dst the verdict key of text, the text with
// its numeric literals masked, and reports whether text is in the subset
// the masking reads exactly. When it is not, the caller keys the text by
// itself.
func appendVerdictKey[T string | []byte](dst []byte, text T) ([]byte, bool) {
	dst = append(dst, keyMasked)
	n := len(text)
	for i := 0; i < n; {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			dst = append(dst, c)
			i++
		case isIdentStart(c):
			j := i + 1
			for j < n && isIdentCont(text[j]) {
				j++
			}
			if j < n && (text[j] == '\'' || text[j] == '"') {
				return dst, false // E'...', B'...', X'...', N'...': prefixed literals
			}
			dst = append(dst, text[i:j]...)
			i = j
		case isDigit(c) || c == '.' && i+1 < n && isDigit(text[i+1]):
			end, integer, ok := scanNumber(text, i)
			if !ok {
				return dst, false
			}
			if integer && fitsInt32(text[i:end]) {
				dst = append(dst, maskInteger)
			} else {
				dst = append(dst, maskNumeric)
			}
			i = end
		case c == '$':
			j := i + 1 // a parameter, $ and digits; anything else is dollar quoting
			for j < n && isDigit(text[j]) {
				j++
			}
			if j == i+1 || j < n && (isIdentCont(text[j]) || text[j] == '.') {
				return dst, false
			}
			dst = append(dst, text[i:j]...)
			i = j
		case c == '"':
			end, ok := skipQuoted(text, i)
			if !ok {
				return dst, false
			}
			dst = append(dst, text[i:end]...) // an identifier: kept
			i = end
		case c == '\'':
			end, ok := skipQuoted(text, i)
			if !ok || continuesString(text, end) {
				return dst, false
			}
			dst = append(dst, maskString)
			i = end
		case c == '-' && i+1 < n && text[i+1] == '-',
			c == '/' && i+1 < n && text[i+1] == '*',
			c == '.' && i+1 < n && text[i+1] == '.', // DOT_DOT: "..5" is not ". .5"
			c == '&' && i+1 < n && (text[i+1] == '\'' || text[i+1] == '"'):
			return dst, false // comments; U&'...' and U&"..."
		case c > ' ' && c < 0x7F && c != '\\':
			dst = append(dst, c)
			i++
		default:
			return dst, false
		}
	}
	return dst, true
}

// scanNumber reads the numeric literal at text[i]: digits, an optional
// fraction, an optional exponent. It gives up (ok false) where PostgreSQL
// versions differ or report an error: a point without digits after it,
// an exponent without digits, a second point, or a letter, digit, '_' or
// '$' right after the literal (hexadecimal 0x1F, 1_000, 1e, 123abc).
func scanNumber[T string | []byte](text T, i int) (end int, integer, ok bool) {
	n := len(text)
	j := i
	for j < n && isDigit(text[j]) {
		j++
	}
	integer = true
	if j < n && text[j] == '.' {
		if j+1 >= n || !isDigit(text[j+1]) {
			return 0, false, false
		}
		integer = false
		for j++; j < n && isDigit(text[j]); j++ {
		}
	}
	if j < n && (text[j] == 'e' || text[j] == 'E') {
		k := j + 1
		if k < n && (text[k] == '+' || text[k] == '-') {
			k++
		}
		if k >= n || !isDigit(text[k]) {
			return 0, false, false
		}
		for ; k < n && isDigit(text[k]); k++ {
		}
		j, integer = k, false
	}
	if j < n && (isIdentCont(text[j]) || text[j] == '.') {
		return 0, false, false
	}
	return j, integer, true
}

// skipQuoted returns the end of the string constant or quoted identifier
// starting at text[i] (its quote doubled inside it stands for itself).
func skipQuoted[T string | []byte](text T, i int) (int, bool) {
	q := text[i]
	for j := i + 1; j < len(text); j++ {
		c := text[j]
		switch {
		case c == q:
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			if q == '"' && j == i+1 {
				return 0, false // "" is an error, not an identifier
			}
			return j + 1, true
		case c == '\\' || c >= 0x7F || c < ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f':
			return 0, false
		}
	}
	return 0, false
}

// continuesString reports whether a string literal ending at text[end] is
// continued by another after whitespace holding a newline, which the lexer
// joins into one literal.
func continuesString[T string | []byte](text T, end int) bool {
	newline := false
	for i := end; i < len(text); i++ {
		switch text[i] {
		case '\n', '\r':
			newline = true
		case ' ', '\t', '\f':
		case '\'':
			return newline
		default:
			return false
		}
	}
	return false
}

// fitsInt32 reports whether the decimal digits b are an integer PostgreSQL
// reads as ICONST (at most 2147483647; larger ones become FCONST).
func fitsInt32[T string | []byte](b T) bool {
	var v int64
	for i := range len(b) {
		c := b[i]
		v = v*10 + int64(c-'0')
		if v > 1<<31-1 {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isIdentCont(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '$' }
