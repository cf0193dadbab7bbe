package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder turns a YAML node tree into a Config by reflection, so that every
// error can name the full dotted key ("jwt.leeway") and its line. It is strict:
// a key that no field declares is an error.
type decoder struct {
	lookupEnv func(string) (string, bool)
}

var durationType = reflect.TypeFor[Duration]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		return d.decode(n.Alias, v, path)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty value keeps the zero value
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(n, v.Elem(), path)
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return keyError(path, n, "expected a list")
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return keyError(path, n, "expected a single value")
	}
	text, err := d.expand(n.Value)
	if err != nil {
		return keyError(path, n, err.Error())
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(text)
		if err != nil || dur < 0 {
			return keyError(path, n, fmt.Sprintf("invalid duration %q (use a number with a unit, e.g. 30s, 5m)", text))
		}
		v.SetInt(int64(dur))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return keyError(path, n, fmt.Sprintf("invalid boolean %q (use true or false)", text))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return keyError(path, n, fmt.Sprintf("invalid integer %q", text))
		}
		v.SetInt(i)
	default:
		return keyError(path, n, fmt.Sprintf("unsupported field type %s", v.Type()))
	}
	return nil
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return keyError(path, n, "expected a mapping of keys to values")
	}
	fields := map[string]reflect.Value{}
	collectFields(v, fields)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := joinPath(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			return keyError(key, k, "unknown key")
		}
		if seen[k.Value] {
			return keyError(key, k, "key given twice")
		}
		seen[k.Value] = true
		if err := d.decode(val, f, key); err != nil {
			return err
		}
	}
	return nil
}

// collectFields maps yaml key names to the settable fields of v, descending
// into fields tagged `yaml:",inline"`.
func collectFields(v reflect.Value, out map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if opts == "inline" {
			collectFields(v.Field(i), out)
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out[name] = v.Field(i)
	}
}

// expand replaces ${VAR} and ${VAR:-default} with values from the
// environment. An unset VAR without a default is an error. "$${" stands for a
// literal "${". Expansion happens on parsed scalar values, so an environment
// value can never inject YAML structure.
func (d *decoder) expand(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable name %q", name)
		}
		val, ok := d.lookupEnv(name)
		switch {
		case ok && val != "":
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		case ok:
			// Set but empty, no default: an empty value is what was asked for.
		default:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to allow that)", name, name)
		}
		s = s[i+end+1:]
	}
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Error is a configuration error that names the offending key.
type Error struct {
	Key  string // dotted path, e.g. "postgres.pool_size"
	Line int    // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: %s (line %d): %s", e.Key, e.Line, e.Msg)
	}
	return fmt.Sprintf("config: %s: %s", e.Key, e.Msg)
}

func keyError(path string, n *yaml.Node, msg string) error {
	if path == "" {
		path = "(top level)"
	}
	return &Error{Key: path, Line: n.Line, Msg: msg}
}

func fieldError(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}
