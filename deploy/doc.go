// Package deploy holds tenantgate's deployment assets (Dockerfile,
// Kubernetes manifests, compose stack, Grafana dashboard, Prometheus rules)
// and, in its tests, the checks that keep them consistent with the code:
// every manifest decodes strictly into the Kubernetes API types, the sidecar
// invariants hold (probes, securityContext, no datastore credential in the
// application container, grace period versus drain deadline), tenantgate's
// configuration passes the real config parser with the environment the Pod
// gives it, and every metric the dashboard and alerts use is registered by
// proxy.NewMetrics. See README.md in this directory.
package deploy
