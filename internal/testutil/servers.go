// Package testutil finds the real datastores that tests run against.
//
// Tests never mock a datastore. scripts/test.sh (and so .ci/run) starts
// PostgreSQL, Redis and a MongoDB-wire server on free loopback ports and
// exports their addresses in the TENANTGATE_TEST_* variables below. A test
// that needs a server it cannot find skips with a message saying how to get
// one, except under CI=true, where a missing server fails the test.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables naming the test servers.
const (
	EnvPostgres = "TENANTGATE_TEST_POSTGRES_URL" // superuser URL, e.g. postgres://postgres@127.0.0.1:5432/postgres
	EnvRedis    = "TENANTGATE_TEST_REDIS_URL"    // e.g. redis://127.0.0.1:6379/0
	EnvMongo    = "TENANTGATE_TEST_MONGO_URL"    // e.g. mongodb://127.0.0.1:27017/
)

// serverURL returns the value of env, or skips t (fails it under CI=true).
func serverURL(t testing.TB, env, what string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	msg := fmt.Sprintf("no %s server: %s is not set (scripts/test.sh starts one and sets it)", what, env)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// PostgresURL returns the superuser URL of the test PostgreSQL server.
func PostgresURL(t testing.TB) string { return serverURL(t, EnvPostgres, "PostgreSQL") }

// RedisURL returns the URL of the test Redis server. Tests share it, so each
// test must use keys of its own (see UniqueName).
func RedisURL(t testing.TB) string { return serverURL(t, EnvRedis, "Redis") }

// MongoURL returns the URL of the test MongoDB-wire server (FerretDB).
func MongoURL(t testing.TB) string { return serverURL(t, EnvMongo, "MongoDB-wire") }

// UniqueName returns prefix followed by random hex, usable as a database,
// role or key name that no other test run uses.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// NewPostgresDB creates a fresh database on the test server, drops it when
// the test ends, and returns a superuser URL that connects to it.
func NewPostgresDB(t testing.TB) string {
	t.Helper()
	admin := PostgresURL(t)
	name := UniqueName("tg_test_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}
