package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Audit event kinds.
const (
	AuditRefusal     = "refusal"
	AuditAuthFailure = "auth_failure"
	AuditSessionEnd  = "session_closed" // closed by the proxy: suspension, expiry
)

// AuditEvent is one line of the audit log.
type AuditEvent struct {
	Time            time.Time `json:"time"`
	Kind            string    `json:"kind"`
	Protocol        string    `json:"protocol"`
	Tenant          string    `json:"tenant,omitempty"`
	Client          string    `json:"client"`
	SessionID       uint64    `json:"session_id,omitempty"`
	Reason          string    `json:"reason"`
	Message         string    `json:"message,omitempty"`
	StatementDigest string    `json:"statement_digest,omitempty"`
	Statement       string    `json:"statement,omitempty"`
}

// Auditor records audit events: always as a structured log line, and as a
// JSON line in the audit file when one is configured. Statement text is kept
// only when configured; otherwise only its digest is, so the audit trail can
// correlate repeated attacks without storing tenant data.
type Auditor struct {
	log        *slog.Logger
	statements bool

	mu sync.Mutex
	w  io.Writer // nil when no audit file
}

// NewAuditor returns an Auditor. w may be nil.
func NewAuditor(log *slog.Logger, w io.Writer, statements bool) *Auditor {
	return &Auditor{log: log, w: w, statements: statements}
}

// Record writes ev. The statement, if any, is digested (and kept only when
// configured).
func (a *Auditor) Record(ev AuditEvent, statement []byte) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if len(statement) > 0 {
		ev.StatementDigest = StatementDigest(statement)
		if a.statements {
			ev.Statement = string(statement)
		}
	}
	a.log.Warn("audit", "kind", ev.Kind, "protocol", ev.Protocol, "tenant", ev.Tenant,
		"client", ev.Client, "session_id", ev.SessionID, "reason", ev.Reason,
		"message", ev.Message, "statement_digest", ev.StatementDigest)
	if a.w == nil {
		return
	}
	line, err := json.Marshal(ev)
	if err != nil {
		a.log.Error("audit: encode event", "err", err)
		return
	}
	line = append(line, '\n')
	a.mu.Lock()
	_, err = a.w.Write(line)
	a.mu.Unlock()
	if err != nil {
		a.log.Error("audit: write event", "err", err)
	}
}

// StatementDigest is the hex SHA-256 of a statement, truncated to 128 bits.
func StatementDigest(statement []byte) string {
	sum := sha256.Sum256(statement)
	return hex.EncodeToString(sum[:16])
}
