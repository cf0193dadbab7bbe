-- Run once by compose's db-setup service as the database owner (postgres),
-- after `ragcore schema --apply` created ragcore's tables. Idempotent.
--
-- 1. tenantgate's role: a login role that is neither superuser nor BYPASSRLS
--    and owns no table, so Row-Level Security applies to everything it runs.
-- 2. the registry role: may read tenantgate.tenants and nothing else. The
--    proxy's role cannot see the registry, so no tenant can read or change it.
-- 3. ragcore's tables made tenant-scoped, the way `tenantgate pg migrate`
--    does it (docs/postgres.md, "Migrate"): a tenant_id column defaulting to
--    app.tenant_id, the primary key widened under its old name, RLS forced,
--    one policy.
\set ON_ERROR_STOP on
\getenv tg_password TENANTGATE_POSTGRES_PASSWORD
\getenv registry_password TENANTGATE_REGISTRY_PASSWORD

SELECT 'CREATE ROLE tenantgate LOGIN NOSUPERUSER NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantgate') \gexec
ALTER ROLE tenantgate LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'tg_password';

SELECT 'CREATE ROLE tenantgate_registry LOGIN NOSUPERUSER NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantgate_registry') \gexec
ALTER ROLE tenantgate_registry LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'registry_password';

CREATE SCHEMA IF NOT EXISTS tenantgate;
CREATE TABLE IF NOT EXISTS tenantgate.tenants (
    id     text PRIMARY KEY,
    slug   text UNIQUE,
    active boolean NOT NULL DEFAULT true
);
REVOKE ALL ON SCHEMA tenantgate FROM PUBLIC;
GRANT USAGE ON SCHEMA tenantgate TO tenantgate_registry;
GRANT SELECT ON tenantgate.tenants TO tenantgate_registry;
-- The demo tenants (ragcore's two corpora). Suspend one with
--   UPDATE tenantgate.tenants SET active = false WHERE id = 'techstart';
INSERT INTO tenantgate.tenants (id) VALUES ('acme'), ('techstart') ON CONFLICT DO NOTHING;

SELECT set_config('app.tenant_id', 'migration', false);
DO $$
DECLARE
    tb text;
BEGIN
    FOREACH tb IN ARRAY ARRAY['ragcore_entities', 'ragcore_relations',
                              'ragcore_chunk_vectors', 'ragcore_entity_vectors', 'ragcore_relation_vectors'] LOOP
        IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_schema = 'public' AND table_name = tb AND column_name = 'tenant_id') THEN
            EXECUTE format('ALTER TABLE %I ADD COLUMN tenant_id text NOT NULL DEFAULT current_setting(''app.tenant_id'')', tb);
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tb, tb || '_pkey');
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (tenant_id, id)', tb, tb || '_pkey');
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tb);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tb);
            EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR ALL'
                           ' USING (tenant_id = (SELECT current_setting(''app.tenant_id'', true)))'
                           ' WITH CHECK (tenant_id = (SELECT current_setting(''app.tenant_id'', true)))', tb);
        END IF;
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tenantgate', tb);
    END LOOP;
END
$$;
