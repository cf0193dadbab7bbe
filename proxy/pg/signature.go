package pg

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Hardened mode. The guard is the first line and Row-Level Security the
// second; but a policy that trusts current_setting('app.tenant_id') trusts
// whoever can write that setting, and a statement that slipped past the
// guard could. In hardened mode the proxy also sets a second setting, the
// signature: hex(HMAC-SHA256(key, tenant)). The policies compare the tenant
// column with tenantgate_rls.current_tenant(), a SECURITY DEFINER function that
// returns the tenant setting only when the signature matches, and NULL
// (no rows, no writes) otherwise. The key lives in a table only the
// function's owner can read, never in the proxy's role's reach, so a forged
// tenant setting matches nothing.
//
// The function computes HMAC-SHA256 with PostgreSQL's built-in sha256()
// (no extension needed) from the key's inner and outer padded forms
// (RFC 2104), which the table stores instead of the key.

// Database objects of hardened mode. The schema is not "tenantgate": the
// proxy's role is often named so, and a schema of its name would come
// first on its default search path ("$user", public), changing what
// current_schema() and unqualified names mean to every application.
const (
	signatureSchema   = "tenantgate_rls"
	signatureKeyTable = "tenantgate_rls.signing_key"
	// CurrentTenantFunc is what hardened policies compare the tenant
	// column with.
	CurrentTenantFunc = "tenantgate_rls.current_tenant()"
)

// TenantSigner signs tenant ids for hardened mode.
type TenantSigner struct {
	key     []byte
	setting string // e.g. app.tenant_sig
}

// NewTenantSigner returns a signer with key (at least 32 bytes) whose
// signature goes into setting.
func NewTenantSigner(key []byte, setting string) (*TenantSigner, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("the tenant signature key is %d bytes; use at least 32 random bytes", len(key))
	}
	if setting == "" {
		return nil, errors.New("no setting for the tenant signature")
	}
	return &TenantSigner{key: append([]byte(nil), key...), setting: setting}, nil
}

// Setting is the name of the signature setting.
func (s *TenantSigner) Setting() string { return s.setting }

// Sign returns tenant's signature: hex(HMAC-SHA256(key, tenant)).
func (s *TenantSigner) Sign(tenant string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tenant))
	return hex.EncodeToString(m.Sum(nil))
}

// paddedKeys are the key XOR-ed with HMAC's inner and outer pads, which is
// what the function needs to compute the HMAC with sha256() alone.
func (s *TenantSigner) paddedKeys() (inner, outer []byte) {
	const blockSize = 64 // SHA-256's
	k := s.key
	if len(k) > blockSize {
		sum := sha256.Sum256(k)
		k = sum[:]
	}
	inner, outer = make([]byte, blockSize), make([]byte, blockSize)
	for i := range blockSize {
		var b byte
		if i < len(k) {
			b = k[i]
		}
		inner[i], outer[i] = b^0x36, b^0x5c
	}
	return inner, outer
}

// SignatureSchemaStatements create (idempotently) the key table and
// tenantgate_rls.current_tenant() for tenantSetting and the signer's setting.
// They hold no key material: ApplyMigration stores the key.
func (s *TenantSigner) SignatureSchemaStatements(tenantSetting string) []string {
	return []string{
		"CREATE SCHEMA IF NOT EXISTS " + signatureSchema,
		"GRANT USAGE ON SCHEMA " + signatureSchema + " TO PUBLIC",
		"CREATE TABLE IF NOT EXISTS " + signatureKeyTable + " (id int PRIMARY KEY CHECK (id = 1), inner_key bytea NOT NULL, outer_key bytea NOT NULL)",
		"REVOKE ALL ON " + signatureKeyTable + " FROM PUBLIC",
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s RETURNS text
	LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $fn$
	SELECT s.tenant FROM (SELECT pg_catalog.current_setting(%s, true) AS tenant,
			pg_catalog.current_setting(%s, true) AS signature) s, %s k
		WHERE k.id = 1 AND s.tenant <> '' AND s.signature = pg_catalog.encode(pg_catalog.sha256(k.outer_key
			OPERATOR(pg_catalog.||) pg_catalog.sha256(k.inner_key OPERATOR(pg_catalog.||) pg_catalog.convert_to(s.tenant, 'UTF8'))), 'hex')
	$fn$`, CurrentTenantFunc, quoteLiteral(tenantSetting), quoteLiteral(s.setting), signatureKeyTable),
		"GRANT EXECUTE ON FUNCTION " + CurrentTenantFunc + " TO PUBLIC",
	}
}

// installSigningKey stores the signer's key (as its padded forms) for
// tenantgate_rls.current_tenant(), replacing any previous one. tx must own the
// key table.
func (s *TenantSigner) installSigningKey(ctx context.Context, tx pgx.Tx) error {
	inner, outer := s.paddedKeys()
	_, err := tx.Exec(ctx, "INSERT INTO "+signatureKeyTable+" (id, inner_key, outer_key) VALUES (1, $1, $2) "+
		"ON CONFLICT (id) DO UPDATE SET inner_key = excluded.inner_key, outer_key = excluded.outer_key", inner, outer)
	return err
}
