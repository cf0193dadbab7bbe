package pg

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The handshake refuses, with a FATAL error naming the reason, everything
// that could escape the tenant or that the proxy does not serve.
func TestStartupRefusals(t *testing.T) {
	env := newPGEnv(t, nil)
	cases := []struct {
		name   string
		dsn    func() string
		params map[string]string
		code   string
		want   string
	}{
		{name: "options", params: map[string]string{"options": "-c app.tenant_id=globex"}, code: "28000", want: `"options" is not allowed`},
		{name: "unknown parameter", params: map[string]string{"session_replication_role": "replica"}, code: "28000", want: "session_replication_role"},
		{name: "client-only encoding", params: map[string]string{"client_encoding": "SJIS"}, code: "22023", want: "UTF8"},
		{name: "non-standard strings", params: map[string]string{"standard_conforming_strings": "off"}, code: "22023", want: "standard_conforming_strings"},
		{name: "replication", params: map[string]string{"replication": "database"}, code: "28000", want: "replication"},
		{name: "other database", dsn: func() string { return strings.Replace(env.url(tenantA), "/"+env.database, "/postgres", 1) }, code: "3D000", want: `"postgres" is not served`},
		{name: "bad token", dsn: func() string { return strings.Replace(env.url(tenantA), env.token(tenantA)[:20], "x", 1) }, code: "28P01", want: "token refused (malformed)"},
		{name: "suspended tenant", dsn: func() string { return env.url("gone") }, code: "28000", want: "suspended_tenant"},
		{name: "unknown tenant", dsn: func() string { return env.url("nobody") }, code: "28000", want: "unknown_tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dsn := env.url(tenantA)
			if tc.dsn != nil {
				dsn = tc.dsn()
			}
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.params {
				cfg.RuntimeParams[k] = v
			}
			c, err := pgx.ConnectConfig(context.Background(), cfg)
			if err == nil {
				c.Close(context.Background())
				t.Fatal("connected")
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != tc.code || pe.Severity != "FATAL" || !strings.Contains(pe.Message, tc.want) {
				t.Fatalf("err = %v, want FATAL %s containing %q", err, tc.code, tc.want)
			}
		})
	}
}

// SSLRequest and GSSENCRequest are declined without TLS configured, and
// the client goes on in plaintext; require_tls refuses plaintext.
func TestStartupEncryptionRequests(t *testing.T) {
	env := newPGEnv(t, nil)
	for _, code := range []uint32{codeSSL, codeGSSENC} {
		conn, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := binary.BigEndian.AppendUint32(nil, 8)
		msg = binary.BigEndian.AppendUint32(msg, code)
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		answer := make([]byte, 1)
		if _, err := io.ReadFull(conn, answer); err != nil || answer[0] != 'N' {
			t.Fatalf("request %d: answer %q, %v", code, answer, err)
		}
		_ = conn.Close()
	}
	// sslmode=prefer falls back to plaintext and works.
	c := connect(t, strings.Replace(env.url(tenantA), "sslmode=disable", "sslmode=prefer", 1))
	mustExec(t, c, "SELECT 1")

	strict := newPGEnv(t, func(o *Options) { o.RequireTLS = true })
	_, err := pgx.Connect(context.Background(), strict.url(tenantA))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, "requires TLS") {
		t.Fatalf("plaintext with require_tls: %v", err)
	}
}

// With a certificate, SSLRequest gets TLS; require_tls then accepts the
// encrypted client.
func TestStartupTLS(t *testing.T) {
	env := newPGEnvTLS(t, func(o *Options) { o.RequireTLS = true }, selfSignedTLS(t))
	dsn := strings.Replace(env.url(tenantA), "sslmode=disable", "sslmode=require", 1)
	c := connect(t, dsn)
	if got := tenantOf(t, c); got != tenantA {
		t.Fatalf("tenant %q", got)
	}
	if !c.PgConn().Conn().(interface{ ConnectionState() tls.ConnectionState }).ConnectionState().HandshakeComplete {
		t.Fatal("not TLS")
	}
}

func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// Absurd length fields end the connection without allocating them.
func TestStartupAbsurdLength(t *testing.T) {
	env := newPGEnv(t, nil)
	for _, n := range []uint32{0, 3, 1 << 31, maxStartupLen + 1} {
		conn, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, n)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			t.Fatalf("length %d: connection not closed: %v", n, err)
		}
		_ = conn.Close()
	}
}
