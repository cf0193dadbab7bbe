package bolt

import (
	"bytes"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/proxy/bolt/packstream"
)

// hideLabel removes the tenant label from every Node in a RECORD. Records
// that cannot hold it (its bytes do not occur) are relayed untouched
// without decoding.
func hideLabel(msg []byte, label string) ([]byte, error) {
	if label == "" || !bytes.Contains(msg, []byte(label)) {
		return msg, nil
	}
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		return nil, err
	}
	if !stripNodeLabel(st.Fields, label) {
		return msg, nil
	}
	return packstream.Append(nil, st)
}

// stripNodeLabel walks v, removing label from the labels of Nodes (also
// inside Paths, lists and maps), and reports whether it changed anything.
func stripNodeLabel(v any, label string) bool {
	changed := false
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			changed = stripNodeLabel(x, label) || changed
		}
	case *packstream.Map:
		changed = stripNodeLabel(v.Values, label)
	case *packstream.Structure:
		if v.Tag == packstream.TagNode {
			if labels, ok := v.Fields[1].([]any); ok {
				kept := slices.DeleteFunc(labels, func(l any) bool { return l == label })
				changed = len(kept) != len(labels)
				v.Fields[1] = kept
			}
			return changed
		}
		changed = stripNodeLabel(v.Fields, label)
	}
	return changed
}

// scrubLabel removes the tenant label from the texts of an upstream
// FAILURE or SUCCESS (error messages, query plans).
func scrubLabel(msg []byte, label string) ([]byte, error) {
	if label == "" || !bytes.Contains(msg, []byte(label)) {
		return msg, nil
	}
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil {
		return nil, err
	}
	scrubStrings(st.Fields, label)
	return packstream.Append(nil, st)
}

func scrubStrings(v any, label string) any {
	switch v := v.(type) {
	case string:
		return strings.ReplaceAll(v, label, "<tenant>")
	case []any:
		for i, x := range v {
			v[i] = scrubStrings(x, label)
		}
	case *packstream.Map:
		for i, x := range v.Values {
			v.Values[i] = scrubStrings(x, label)
		}
	}
	return v
}

// rewriteServers is the servers list of a routing table with every
// address replaced by the proxy's: one entry per role the upstream listed
// (ROUTE, READ, WRITE).
func rewriteServers(table *packstream.Map, advertise string) []any {
	servers, _ := table.Get("servers")
	list, _ := servers.([]any)
	var roles []string
	for _, s := range list {
		if m, ok := s.(*packstream.Map); ok {
			if role, ok := stringEntry(m, "role"); ok && !slices.Contains(roles, role) {
				roles = append(roles, role)
			}
		}
	}
	if len(roles) == 0 {
		roles = []string{"ROUTE", "READ", "WRITE"}
	}
	out := make([]any, len(roles))
	for i, role := range roles {
		out[i] = &packstream.Map{Keys: []string{"addresses", "role"}, Values: []any{[]any{advertise}, role}}
	}
	return out
}

// hasMore reports whether a PULL or DISCARD SUCCESS says the result has
// more records.
func hasMore(msg []byte) bool {
	if !bytes.Contains(msg, []byte("has_more")) {
		return false
	}
	st, err := packstream.DecodeStructure(msg, packstream.DefaultLimits)
	if err != nil || len(st.Fields) == 0 {
		return false
	}
	meta, ok := st.Fields[0].(*packstream.Map)
	if !ok {
		return false
	}
	more, _ := meta.Get("has_more")
	return more == true
}
