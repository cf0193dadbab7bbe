// Package e2e holds tenantgate's end-to-end tests: whole applications run
// through an in-process sidecar against the real test servers.
//
// TestRagcoreThroughTenantgate is the proof the project is built around:
// ragcore, which knows nothing of tenants, runs once per tenant token through
// the sidecar's PostgreSQL, Redis and MongoDB listeners and stays isolated,
// with the same answers it gives directly against the stores.
package e2e
