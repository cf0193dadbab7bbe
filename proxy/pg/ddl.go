package pg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// answerIfExists answers CREATE ... IF NOT EXISTS as PostgreSQL would when
// the object exists: a NOTICE and the command tag, without running it.
// It reports false when the statement must be refused instead.
func (c *clientSession) answerIfExists(ine *IfNotExists) (bool, error) {
	status := byte('I')
	if srv := c.server.Load(); srv != nil {
		srv.mu.Lock()
		busy := srv.owner == c && len(srv.pending) > 0
		status = srv.txStatus
		srv.mu.Unlock()
		if busy || status != 'I' {
			return false, nil
		}
	}
	exists, err := c.e.objectExists(c.s.Context(), ine)
	if err != nil || !exists {
		return false, nil
	}
	code, what := "42P07", "relation"
	if ine.Kind == "extension" {
		code, what = "42710", "extension"
	}
	var out []byte
	out = (&pgError{severity: "NOTICE", code: code, message: fmt.Sprintf("%s %q already exists, skipping", what, ine.Name)}).encodeNotice(out)
	out = appendMsg(out, 'C', []byte(ine.Tag), []byte{0})
	out = append(out, readyForQuery(status)...)
	c.write(out, true)
	c.req.Forwarded(0)
	return true, nil
}

// objectExists looks ine's object up in the catalog with the proxy's own
// connection (and its search_path).
func (e *Engine) objectExists(ctx context.Context, ine *IfNotExists) (bool, error) {
	e.catalogMu.Lock()
	defer e.catalogMu.Unlock()
	if e.catalog == nil || e.catalog.IsClosed() {
		c, err := pgconn.ConnectConfig(ctx, e.pool.config)
		if err != nil {
			return false, err
		}
		e.catalog = c
	}
	sql, arg := "SELECT to_regclass($1) IS NOT NULL", quoteQualified(ine.Schema, ine.Name)
	if ine.Kind == "extension" {
		sql, arg = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = $1)", ine.Name
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res := e.catalog.ExecParams(ctx, sql, [][]byte{[]byte(arg)}, nil, nil, nil).Read()
	if res.Err != nil {
		return false, res.Err
	}
	return len(res.Rows) == 1 && string(res.Rows[0][0]) == "t", nil
}

func quoteQualified(schema, name string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	if schema == "" {
		return q(name)
	}
	return q(schema) + "." + q(name)
}
