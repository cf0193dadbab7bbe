package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/tenantgate/tenantgate/config"
	"github.com/tenantgate/tenantgate/policy"
)

// The names the manifests and these checks agree on.
const (
	sidecarName    = "tenantgate" // tenantgate's container
	appName        = "app"        // the application's container
	deploymentName = "app"
	sidecarLabel   = "tenantgate.io/sidecar"
)

// TestManifests checks the real deploy/ tree.
func TestManifests(t *testing.T) {
	for _, msg := range check(t, ".") {
		t.Error(msg)
	}
}

// check runs every check on the deploy/ tree at root and returns what is
// wrong, one message per problem. It never stops at the first problem, so a
// broken copy shows exactly which invariant it breaks.
func check(t *testing.T, root string) []string {
	t.Helper()
	c := &checker{root: root, tmp: t.TempDir()}
	c.kustomizations()
	base := c.load("kubernetes/base")
	var baseCfg *config.Config
	if base != nil {
		baseCfg = c.pod("base", base.deployment(deploymentName), base)
		c.basePlaceholdersFailClosed(base)
	}
	if overlay := c.load("kubernetes/overlays/ragcore"); overlay != nil && base != nil {
		c.ragcoreOverlay(overlay)
	}
	if base != nil {
		c.datastorePolicy(base, baseCfg)
		c.monitors(base)
	}
	c.compose()
	c.alertThresholds(baseCfg)
	c.metricNames()
	return c.problems
}

type checker struct {
	root, tmp string
	problems  []string
	seq       int
}

func (c *checker) errorf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) path(rel string) string { return filepath.Join(c.root, filepath.FromSlash(rel)) }

func (c *checker) tempDir() string {
	c.seq++
	dir := filepath.Join(c.tmp, strconv.Itoa(c.seq))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.errorf("%v", err)
	}
	return dir
}

// ---- decoding ----

// kustomization is the subset of kustomize's Kustomization these manifests
// use; decoding is strict, so any other field is an error here first.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources,omitempty"`
	Patches   []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
}

// monitorEndpoint is an endpoint of a PodMonitor or ServiceMonitor
// (monitoring.coreos.com/v1): only the fields used here, decoded strictly.
type monitorEndpoint struct {
	Port          string `json:"port"`
	Path          string `json:"path"`
	Interval      string `json:"interval,omitempty"`
	ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
}

type podMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []monitorEndpoint    `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []monitorEndpoint    `json:"endpoints"`
	} `json:"spec"`
}

type object struct {
	file, kind, name, namespace string
	value                       any
}

type bundle struct {
	dir     string
	objects []object
	patches []string // strategic merge patch files, relative to root
}

func find[T any](b *bundle, kind, name string) *T {
	for _, o := range b.objects {
		if o.kind == kind && o.name == name {
			if v, ok := o.value.(*T); ok {
				return v
			}
		}
	}
	return nil
}

func (b *bundle) deployment(name string) *appsv1.Deployment {
	return find[appsv1.Deployment](b, "Deployment", name)
}
func (b *bundle) configMap(name string) *corev1.ConfigMap {
	return find[corev1.ConfigMap](b, "ConfigMap", name)
}
func (b *bundle) secret(name string) *corev1.Secret { return find[corev1.Secret](b, "Secret", name) }

func all[T any](b *bundle) []*T {
	var out []*T
	for _, o := range b.objects {
		if v, ok := o.value.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// splitDocs splits a YAML stream at its "---" lines, dropping empty
// documents (comments only).
func splitDocs(data []byte) ([][]byte, error) {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() error {
		j, err := yaml.YAMLToJSON(cur.Bytes())
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(j)); s != "null" && s != "" {
			docs = append(docs, slices.Clone(cur.Bytes()))
		}
		cur.Reset()
		return nil
	}
	for line := range strings.Lines(string(data)) {
		if strings.TrimRight(line, "\r\n") == "---" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur.WriteString(line)
	}
	return docs, flush()
}

func decodeObject(file string, doc []byte) (object, error) {
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return object{}, err
	}
	var v any
	switch head.APIVersion + " " + head.Kind {
	case "apps/v1 Deployment":
		v = &appsv1.Deployment{}
	case "v1 ConfigMap":
		v = &corev1.ConfigMap{}
	case "v1 Secret":
		v = &corev1.Secret{}
	case "v1 Service":
		v = &corev1.Service{}
	case "networking.k8s.io/v1 NetworkPolicy":
		v = &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 PodMonitor":
		v = &podMonitor{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		v = &serviceMonitor{}
	default:
		return object{}, fmt.Errorf("unexpected apiVersion/kind %q %q", head.APIVersion, head.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return object{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	if head.Metadata.Name == "" {
		return object{}, fmt.Errorf("%s without metadata.name", head.Kind)
	}
	return object{file: file, kind: head.Kind, name: head.Metadata.Name, namespace: head.Metadata.Namespace, value: v}, nil
}

func (c *checker) readKustomization(dir string) (*kustomization, error) {
	data, err := os.ReadFile(c.path(dir + "/kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("%s/kustomization.yaml: apiVersion/kind %q %q", dir, k.APIVersion, k.Kind)
	}
	return &k, nil
}

// load decodes every object of the kustomization in dir (relative to root),
// following directory resources, and reports decoding problems.
func (c *checker) load(dir string) *bundle {
	b := &bundle{dir: dir}
	if !c.loadInto(b, dir, 0) {
		return nil
	}
	return b
}

func (c *checker) loadInto(b *bundle, dir string, depth int) bool {
	if depth > 4 {
		c.errorf("%s: kustomization resources nest too deep", dir)
		return false
	}
	k, err := c.readKustomization(dir)
	if err != nil {
		c.errorf("%v", err)
		return false
	}
	ok := true
	for _, r := range k.Resources {
		rel := filepath.ToSlash(filepath.Join(dir, r))
		info, err := os.Stat(c.path(rel))
		switch {
		case err != nil:
			c.errorf("%s/kustomization.yaml: resource %s: %v", dir, r, err)
			ok = false
		case info.IsDir():
			ok = c.loadInto(b, rel, depth+1) && ok
		default:
			data, err := os.ReadFile(c.path(rel))
			if err != nil {
				c.errorf("%v", err)
				ok = false
				continue
			}
			docs, err := splitDocs(data)
			if err != nil {
				c.errorf("%s: %v", rel, err)
				ok = false
				continue
			}
			for _, doc := range docs {
				o, err := decodeObject(rel, doc)
				if err != nil {
					c.errorf("%s: %v", rel, err)
					ok = false
					continue
				}
				b.objects = append(b.objects, o)
			}
		}
	}
	for _, p := range k.Patches {
		b.patches = append(b.patches, filepath.ToSlash(filepath.Join(dir, p.Path)))
	}
	return ok
}

// kustomizations checks that every kustomization under kubernetes/ lists
// every manifest file of its directory, and that no manifest directory lacks
// a kustomization.
func (c *checker) kustomizations() {
	found := 0
	err := filepath.WalkDir(c.path("kubernetes"), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		var manifests []string
		hasK := false
		for _, e := range entries {
			switch {
			case e.Name() == "kustomization.yaml":
				hasK = true
			case !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")):
				manifests = append(manifests, e.Name())
			}
		}
		rel, _ := filepath.Rel(c.root, p)
		rel = filepath.ToSlash(rel)
		if !hasK {
			if len(manifests) > 0 {
				c.errorf("%s: manifests %v but no kustomization.yaml", rel, manifests)
			}
			return nil
		}
		found++
		k, err := c.readKustomization(rel)
		if err != nil {
			c.errorf("%v", err)
			return nil
		}
		listed := map[string]bool{}
		for _, r := range k.Resources {
			listed[filepath.Clean(r)] = true
		}
		for _, pt := range k.Patches {
			listed[filepath.Clean(pt.Path)] = true
		}
		for _, m := range manifests {
			if !listed[m] {
				c.errorf("%s/kustomization.yaml does not list %s", rel, m)
			}
		}
		for r := range listed {
			if _, err := os.Stat(filepath.Join(p, r)); err != nil {
				c.errorf("%s/kustomization.yaml lists %s: %v", rel, r, err)
			}
		}
		return nil
	})
	if err != nil {
		c.errorf("walking kubernetes/: %v", err)
	}
	if found < 5 {
		c.errorf("found %d kustomizations under kubernetes/, want base, datastores, two monitoring variants and the ragcore overlay", found)
	}
}

// ---- the Pod ----

type namedContainer struct {
	c       *corev1.Container
	sidecar bool // a native sidecar (init container, restartPolicy Always)
}

func podContainers(spec *corev1.PodSpec) []namedContainer {
	var out []namedContainer
	for i := range spec.InitContainers {
		ic := &spec.InitContainers[i]
		out = append(out, namedContainer{ic, ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways})
	}
	for i := range spec.Containers {
		out = append(out, namedContainer{c: &spec.Containers[i]})
	}
	return out
}

func containerNamed(spec *corev1.PodSpec, name string) *corev1.Container {
	for _, nc := range podContainers(spec) {
		if nc.c.Name == name {
			return nc.c
		}
	}
	return nil
}

// pod checks the Deployment's Pod against the sidecar invariants and returns
// tenantgate's parsed configuration (nil when it does not parse).
func (c *checker) pod(where string, dep *appsv1.Deployment, b *bundle) *config.Config {
	if dep == nil {
		c.errorf("%s: no Deployment %q", where, deploymentName)
		return nil
	}
	spec := &dep.Spec.Template.Spec
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		c.errorf("%s: the Deployment's selector does not match its Pod template labels", where)
	}
	if podLabels[sidecarLabel] != "true" {
		c.errorf("%s: the Pod template lacks the label %s=true the network policies select", where, sidecarLabel)
	}
	tg, app := containerNamed(spec, sidecarName), containerNamed(spec, appName)
	if tg == nil || app == nil {
		c.errorf("%s: want containers %q and %q", where, sidecarName, appName)
		return nil
	}
	if len(podContainers(spec)) != 2 {
		c.errorf("%s: want exactly the %q and %q containers, have %d", where, appName, sidecarName, len(podContainers(spec)))
	}
	for _, nc := range podContainers(spec) {
		if nc.c.Name == sidecarName && !nc.sidecar && slices.ContainsFunc(spec.InitContainers, func(ic corev1.Container) bool { return ic.Name == sidecarName }) {
			c.errorf("%s: %s is an init container without restartPolicy: Always; it would have to exit before the app starts", where, sidecarName)
		}
	}
	c.securityContexts(where, spec)
	c.resources(where, spec)

	cfg := c.sidecarConfig(where, spec, tg, b)
	c.sidecarProbes(where, dep, tg, cfg)
	c.appHasNoCredentials(where, spec, app, tg, b)
	if cfg != nil {
		c.appAddresses(where, app, b, cfg)
		c.gracePeriod(where, spec, cfg)
		for _, l := range cfg.Listeners() {
			if host, _, err := net.SplitHostPort(l.Listen); err != nil || !net.ParseIP(host).IsLoopback() {
				c.errorf("%s: %s.listen %q is not a loopback address: the data listeners must be reachable only inside the Pod", where, l.Key, l.Listen)
			}
		}
		c.egressPolicy(where, b, podLabels, cfg)
	}
	for _, svc := range all[corev1.Service](b) {
		if len(svc.Spec.Selector) > 0 && !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			c.errorf("%s: Service %s selects %v, which does not match the Pod", where, svc.Name, svc.Spec.Selector)
		}
	}
	return cfg
}

func (c *checker) securityContexts(where string, spec *corev1.PodSpec) {
	psc := spec.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		c.errorf("%s: the Pod securityContext lacks seccompProfile RuntimeDefault", where)
	}
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		c.errorf("%s: the Pod securityContext lacks runAsNonRoot: true", where)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		c.errorf("%s: automountServiceAccountToken is not false (neither container needs the Kubernetes API)", where)
	}
	for _, nc := range podContainers(spec) {
		sc, name := nc.c.SecurityContext, nc.c.Name
		if sc == nil {
			c.errorf("%s: container %s has no securityContext", where, name)
			continue
		}
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			c.errorf("%s: container %s: runAsNonRoot is not true", where, name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			c.errorf("%s: container %s: readOnlyRootFilesystem is not true", where, name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.errorf("%s: container %s: allowPrivilegeEscalation is not false", where, name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			c.errorf("%s: container %s is privileged", where, name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			c.errorf("%s: container %s: capabilities must drop ALL and add none", where, name)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			c.errorf("%s: container %s: seccompProfile is not RuntimeDefault", where, name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			c.errorf("%s: container %s runs as uid 0", where, name)
		}
	}
}

func (c *checker) resources(where string, spec *corev1.PodSpec) {
	for _, nc := range podContainers(spec) {
		r := nc.c.Resources
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := r.Requests[res]; !ok || q.IsZero() {
				c.errorf("%s: container %s has no %s request", where, nc.c.Name, res)
			}
		}
		req, lim := r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]
		if lim.IsZero() {
			c.errorf("%s: container %s has no memory limit", where, nc.c.Name)
		} else if lim.Cmp(req) < 0 {
			c.errorf("%s: container %s: memory limit below its request", where, nc.c.Name)
		}
	}
}

// configArg returns the value of --config in tenantgate's arguments.
func configArg(ctr *corev1.Container) string {
	args := append(slices.Clone(ctr.Command), ctr.Args...)
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// containerEnv resolves the environment ctr gets, Secret and ConfigMap
// references included. It reports references to keys that do not exist.
func (c *checker) containerEnv(where string, ctr *corev1.Container, b *bundle) map[string]string {
	env := map[string]string{}
	for _, ef := range ctr.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := b.configMap(ef.ConfigMapRef.Name)
			if cm == nil {
				c.errorf("%s: container %s: envFrom ConfigMap %s is not in the kustomization", where, ctr.Name, ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[ef.Prefix+k] = v
			}
		case ef.SecretRef != nil:
			s := b.secret(ef.SecretRef.Name)
			if s == nil {
				c.errorf("%s: container %s: envFrom Secret %s is not in the kustomization", where, ctr.Name, ef.SecretRef.Name)
				continue
			}
			for k, v := range secretData(s) {
				env[ef.Prefix+k] = v
			}
		}
	}
	for _, e := range ctr.Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = e.Value
		case vf.SecretKeyRef != nil:
			s := b.secret(vf.SecretKeyRef.Name)
			v, ok := secretData(s)[vf.SecretKeyRef.Key]
			if s == nil || !ok {
				c.errorf("%s: container %s: env %s refers to Secret %s key %s, which the kustomization does not define", where, ctr.Name, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
			}
			env[e.Name] = v
		case vf.ConfigMapKeyRef != nil:
			cm := b.configMap(vf.ConfigMapKeyRef.Name)
			if cm == nil {
				c.errorf("%s: container %s: env %s refers to ConfigMap %s, which the kustomization does not define", where, ctr.Name, e.Name, vf.ConfigMapKeyRef.Name)
				continue
			}
			env[e.Name] = cm.Data[vf.ConfigMapKeyRef.Key]
		case vf.ResourceFieldRef != nil:
			env[e.Name] = "536870912"
		case vf.FieldRef != nil:
			env[e.Name] = "field"
		}
	}
	return env
}

func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	if s == nil {
		return out
	}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// mountedFiles materialises every ConfigMap and Secret volume ctr mounts in a
// temporary directory and returns mount path -> directory.
func (c *checker) mountedFiles(where string, spec *corev1.PodSpec, ctr *corev1.Container, b *bundle) map[string]string {
	out := map[string]string{}
	for _, vm := range ctr.VolumeMounts {
		var vol *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == vm.Name {
				vol = &spec.Volumes[i]
			}
		}
		if vol == nil {
			c.errorf("%s: container %s mounts volume %s, which the Pod does not define", where, ctr.Name, vm.Name)
			continue
		}
		var files map[string]string
		var items []corev1.KeyToPath
		switch {
		case vol.ConfigMap != nil:
			cm := b.configMap(vol.ConfigMap.Name)
			if cm == nil {
				c.errorf("%s: volume %s: ConfigMap %s is not in the kustomization", where, vol.Name, vol.ConfigMap.Name)
				continue
			}
			files, items = cm.Data, vol.ConfigMap.Items
		case vol.Secret != nil:
			s := b.secret(vol.Secret.SecretName)
			if s == nil {
				c.errorf("%s: volume %s: Secret %s is not in the kustomization", where, vol.Name, vol.Secret.SecretName)
				continue
			}
			files, items = secretData(s), vol.Secret.Items
		default:
			continue
		}
		dir := c.tempDir()
		if len(items) > 0 {
			picked := map[string]string{}
			for _, it := range items {
				picked[it.Path] = files[it.Key]
			}
			files = picked
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				c.errorf("%v", err)
			}
		}
		out[vm.MountPath] = dir
	}
	return out
}

// sidecarConfig finds tenantgate's config file among its mounts and parses
// it with the real parser, with the environment the container gets and the
// mounted files at their mount paths.
func (c *checker) sidecarConfig(where string, spec *corev1.PodSpec, tg *corev1.Container, b *bundle) *config.Config {
	path := configArg(tg)
	if path == "" {
		c.errorf("%s: %s is not started with --config FILE", where, sidecarName)
		return nil
	}
	mounts := c.mountedFiles(where, spec, tg, b)
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	local := func(p string) (string, bool) {
		for _, m := range paths {
			if rest, ok := strings.CutPrefix(p, strings.TrimSuffix(m, "/")+"/"); ok {
				return filepath.Join(mounts[m], rest), true
			}
		}
		return "", false
	}
	file, ok := local(path)
	if !ok {
		c.errorf("%s: --config %s is not inside any ConfigMap or Secret mount of %s", where, path, sidecarName)
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		c.errorf("%s: --config %s: no such key in the mounted ConfigMap", where, path)
		return nil
	}
	// Point paths inside the mounts at the materialised copies.
	text := string(data)
	for _, m := range paths {
		text = strings.ReplaceAll(text, strings.TrimSuffix(m, "/")+"/", mounts[m]+string(filepath.Separator))
	}
	env := c.containerEnv(where, tg, b)
	cfg, err := config.Parse([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		c.errorf("%s: tenantgate's config %s does not load with the container's environment and mounts: %v", where, path, err)
		return nil
	}
	return cfg
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(p)
	return n
}

func (c *checker) sidecarProbes(where string, dep *appsv1.Deployment, tg *corev1.Container, cfg *config.Config) {
	adminPort := -1
	if cfg != nil {
		adminPort = portOf(cfg.Admin.Listen)
		if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); host != "" && host != "0.0.0.0" && host != "::" {
			c.errorf("%s: admin.listen %q is not reachable from the kubelet's probes or Prometheus; listen on 0.0.0.0", where, cfg.Admin.Listen)
		}
	}
	var named *corev1.ContainerPort
	for i := range tg.Ports {
		if tg.Ports[i].Name == "admin" {
			named = &tg.Ports[i]
		}
	}
	if named == nil {
		c.errorf("%s: %s has no container port named admin", where, sidecarName)
	} else if adminPort >= 0 && int(named.ContainerPort) != adminPort {
		c.errorf("%s: container port admin is %d, admin.listen is %d", where, named.ContainerPort, adminPort)
	}
	probe := func(kind string, p *corev1.Probe, paths ...string) {
		if p == nil || p.HTTPGet == nil {
			c.errorf("%s: %s has no HTTP %s probe", where, sidecarName, kind)
			return
		}
		if !slices.Contains(paths, p.HTTPGet.Path) {
			c.errorf("%s: %s %s probe path %s, want %v", where, sidecarName, kind, p.HTTPGet.Path, paths)
		}
		port := p.HTTPGet.Port
		switch {
		case port.StrVal != "" && port.StrVal != "admin":
			c.errorf("%s: %s %s probe on port %s, want the admin port", where, sidecarName, kind, port.StrVal)
		case port.StrVal == "" && int(port.IntVal) != adminPort:
			c.errorf("%s: %s %s probe on port %d, admin.listen is %d", where, sidecarName, kind, port.IntVal, adminPort)
		}
	}
	probe("readiness", tg.ReadinessProbe, "/readyz")
	probe("liveness", tg.LivenessProbe, "/healthz")
	if tg.StartupProbe != nil {
		probe("startup", tg.StartupProbe, "/readyz", "/healthz")
	}
	ann := dep.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(adminPort) {
		c.errorf("%s: prometheus.io/* annotations %v do not point at /metrics on the admin port %d", where, ann, adminPort)
	}
}

// appHasNoCredentials: the application container references no Secret at
// all (env, envFrom, volumes), in particular none of tenantgate's, and its
// plain environment carries no password.
func (c *checker) appHasNoCredentials(where string, spec *corev1.PodSpec, app, tg *corev1.Container, b *bundle) {
	for _, e := range app.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			c.errorf("%s: the app container's env %s comes from Secret %s: the app must hold no datastore credential", where, e.Name, e.ValueFrom.SecretKeyRef.Name)
		}
	}
	for _, ef := range app.EnvFrom {
		if ef.SecretRef != nil {
			c.errorf("%s: the app container takes envFrom Secret %s: the app must hold no datastore credential", where, ef.SecretRef.Name)
		}
	}
	secretVolumes := map[string]string{}
	for _, v := range spec.Volumes {
		switch {
		case v.Secret != nil:
			secretVolumes[v.Name] = v.Secret.SecretName
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					secretVolumes[v.Name] = s.Secret.Name
				}
			}
		}
	}
	for _, vm := range app.VolumeMounts {
		if s, ok := secretVolumes[vm.Name]; ok {
			c.errorf("%s: the app container mounts Secret %s (volume %s): the app must hold no datastore credential", where, s, vm.Name)
		}
	}
	// Values the app sees must not carry a password or any of tenantgate's
	// secret values.
	secrets := map[string]bool{}
	for k, v := range c.containerEnv(where, tg, b) {
		if strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET") {
			secrets[v] = true
		}
	}
	for k, v := range c.containerEnv(where, app, b) {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				c.errorf("%s: the app's %s carries a password", where, k)
			}
		}
		if secrets[v] && v != "" {
			c.errorf("%s: the app's %s equals one of tenantgate's secret values", where, k)
		}
		if strings.Contains(k, "PASSWORD") || strings.Contains(k, "CREDENTIAL") || strings.Contains(k, "TOKEN") || strings.Contains(k, "SECRET") {
			c.errorf("%s: the app's environment has %s: the app must hold no datastore credential", where, k)
		}
	}
}

// appAddresses: every datastore address the app is given is loopback and one
// of tenantgate's listener ports.
func (c *checker) appAddresses(where string, app *corev1.Container, b *bundle, cfg *config.Config) {
	ports := map[string]bool{}
	for _, l := range cfg.Listeners() {
		_, p, _ := net.SplitHostPort(l.Listen)
		ports[p] = true
	}
	loopback := func(h string) bool { return h == "localhost" || net.ParseIP(h).IsLoopback() }
	seen := 0
	for k, v := range c.containerEnv(where, app, b) {
		var host, port string
		switch {
		case strings.Contains(v, "://"):
			u, err := url.Parse(v)
			if err != nil {
				c.errorf("%s: the app's %s is not a URL", where, k)
				continue
			}
			host, port = u.Hostname(), u.Port()
		case strings.HasSuffix(k, "_ADDR"):
			host, port, _ = net.SplitHostPort(v)
		case strings.HasSuffix(k, "HOST"):
			host = v
		case strings.HasSuffix(k, "PORT"):
			port = v
		default:
			continue
		}
		seen++
		if host != "" && !loopback(host) {
			c.errorf("%s: the app's %s points at %s, not at tenantgate on the loopback interface", where, k, host)
		}
		if port != "" && !ports[port] {
			c.errorf("%s: the app's %s uses port %s, which is none of tenantgate's listeners %v", where, k, port, slices.Sorted(mapsKeys(ports)))
		}
		if host != "" && port == "" && strings.Contains(v, "://") {
			c.errorf("%s: the app's %s has no port: the datastore's default port is not tenantgate's", where, k)
		}
	}
	if seen == 0 {
		c.errorf("%s: the app container is given no datastore address", where)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// gracePeriod: the Pod's grace period covers every preStop sleep plus the
// drain deadline, with margin.
func (c *checker) gracePeriod(where string, spec *corev1.PodSpec, cfg *config.Config) {
	if spec.TerminationGracePeriodSeconds == nil {
		c.errorf("%s: terminationGracePeriodSeconds is not set (the default 30s is unrelated to server.drain_timeout)", where)
		return
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	var sleeps time.Duration
	for _, nc := range podContainers(spec) {
		if l := nc.c.Lifecycle; l != nil && l.PreStop != nil {
			if l.PreStop.Sleep == nil {
				c.errorf("%s: container %s has a preStop hook that is not a sleep action (the images have no shell)", where, nc.c.Name)
				continue
			}
			sleeps += time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		}
	}
	app := containerNamed(spec, appName)
	if app.Lifecycle == nil || app.Lifecycle.PreStop == nil {
		c.errorf("%s: the app container has no preStop sleep: it would stop while endpoints still send it traffic", where)
	}
	need := sleeps + cfg.Server.DrainTimeout.D()
	if grace <= need {
		c.errorf("%s: terminationGracePeriodSeconds %s does not exceed preStop sleeps + server.drain_timeout = %s", where, grace, need)
	}
}

// upstreamPorts are the TCP ports of the configured upstreams.
func upstreamPorts(cfg *config.Config) map[int]string {
	defaults := map[string]int{"postgres": 5432, "postgresql": 5432, "redis": 6379, "rediss": 6379, "mongodb": 27017, "bolt": 7687, "neo4j": 7687}
	out := map[int]string{}
	add := func(key, raw string) {
		if raw == "" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		p, err := strconv.Atoi(u.Port())
		if err != nil {
			p = defaults[strings.Split(u.Scheme, "+")[0]]
		}
		out[p] = key
	}
	if p := cfg.Postgres; p != nil {
		add("postgres.upstream", string(p.Upstream))
	}
	if r := cfg.Redis; r != nil {
		add("redis.upstream", string(r.Upstream))
	}
	if m := cfg.Mongo; m != nil {
		add("mongo.upstream", string(m.Upstream))
	}
	if b := cfg.Bolt; b != nil {
		add("bolt.upstream", string(b.Upstream))
	}
	if r := cfg.Registry; r != nil {
		add("registry.postgres", string(r.Postgres))
		add("registry.redis", string(r.Redis))
	}
	return out
}

func policyPorts(ports []networkingv1.NetworkPolicyPort) map[int]bool {
	out := map[int]bool{}
	for _, p := range ports {
		if p.Port != nil && p.Port.StrVal == "" {
			out[int(p.Port.IntVal)] = true
		}
	}
	return out
}

// egressPolicy: a NetworkPolicy selects the Pod, restricts its egress, and
// allows every upstream port tenantgate needs.
func (c *checker) egressPolicy(where string, b *bundle, podLabels labels.Set, cfg *config.Config) {
	var found bool
	for _, np := range all[networkingv1.NetworkPolicy](b) {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(podLabels) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			continue
		}
		found = true
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 {
			c.errorf("%s: NetworkPolicy %s selects every Pod of the namespace", where, np.Name)
		}
		allowed := map[int]bool{}
		for _, rule := range np.Spec.Egress {
			if len(rule.Ports) == 0 {
				c.errorf("%s: NetworkPolicy %s has an egress rule without ports (any port)", where, np.Name)
			}
			for p := range policyPorts(rule.Ports) {
				allowed[p] = true
			}
		}
		for p, key := range upstreamPorts(cfg) {
			if !allowed[p] {
				c.errorf("%s: NetworkPolicy %s does not allow egress to port %d (%s)", where, np.Name, p, key)
			}
		}
	}
	if !found {
		c.errorf("%s: no egress NetworkPolicy selects the Pod (label %s=true)", where, sidecarLabel)
	}
}

// basePlaceholdersFailClosed: the shipped placeholder key is not a key, so an
// unedited deployment refuses to start instead of running with it.
func (c *checker) basePlaceholdersFailClosed(b *bundle) {
	s := b.secret("tenantgate-jwt")
	if s == nil {
		c.errorf("base: no Secret tenantgate-jwt")
		return
	}
	for k, v := range secretData(s) {
		_, err := policy.NewVerifier(context.Background(), policy.VerifierConfig{PublicKeysPEM: [][]byte{[]byte(v)}})
		if err == nil {
			c.errorf("base: Secret tenantgate-jwt key %s holds a usable key; ship a placeholder that fails closed", k)
		}
	}
}

// ---- overlay, datastores, monitoring ----

func (c *checker) ragcoreOverlay(o *bundle) {
	const where = "overlays/ragcore"
	dep := o.deployment(deploymentName)
	if dep == nil {
		c.errorf("%s: the base Deployment is missing", where)
		return
	}
	if len(o.patches) == 0 {
		c.errorf("%s: no patch makes the app ragcore", where)
		return
	}
	out := dep.DeepCopy()
	for _, p := range o.patches {
		data, err := os.ReadFile(c.path(p))
		if err != nil {
			c.errorf("%s: %v", where, err)
			continue
		}
		var patch appsv1.Deployment
		if err := yaml.UnmarshalStrict(data, &patch); err != nil {
			c.errorf("%s: %s: %v", where, p, err)
			continue
		}
		if patch.Kind != "Deployment" || patch.Name != deploymentName {
			c.errorf("%s: %s patches %s %s, want Deployment %s", where, p, patch.Kind, patch.Name, deploymentName)
			continue
		}
		if err := mergeContainerPatch(out, &patch); err != nil {
			c.errorf("%s: %s: %v", where, p, err)
		}
	}
	c.pod(where, out, o)
	app := containerNamed(&out.Spec.Template.Spec, appName)
	if app == nil {
		return
	}
	if !strings.Contains(app.Image, "ragcore") {
		c.errorf("%s: the app image is %s, not ragcore", where, app.Image)
	}
	if len(app.Args) == 0 || app.Args[0] != "serve" || !slices.Contains(app.Args, "--listen") {
		c.errorf("%s: ragcore is not started with serve --listen: %v", where, app.Args)
	}
	env := c.containerEnv(where, app, o)
	for _, k := range []string{"RAGCORE_POSTGRES", "RAGCORE_REDIS", "RAGCORE_MONGO"} {
		if env[k] == "" {
			c.errorf("%s: ragcore has no %s", where, k)
		}
	}
	for k := range env {
		if !strings.HasPrefix(k, "RAGCORE_") {
			c.errorf("%s: ragcore still gets the base app's %s", where, k)
		}
	}
}

// mergeContainerPatch applies a strategic merge patch to dep the way
// kustomize does, for the fields these overlays patch: Pod template labels
// and annotations (merged), and per container, matched by name, image,
// command and args (replaced), envFrom (replaced: it has no merge key) and
// env (merged by name). A patch touching any other field is refused, so the
// check never passes on a patch it did not apply. (The apimachinery
// strategicpatch package would do it generally, at the cost of the OpenAPI
// dependency tree.)
func mergeContainerPatch(dep, patch *appsv1.Deployment) error {
	rest := patch.DeepCopy()
	rest.TypeMeta, rest.ObjectMeta = metav1.TypeMeta{}, metav1.ObjectMeta{}
	rest.Spec.Template.Labels, rest.Spec.Template.Annotations = nil, nil
	rest.Spec.Template.Spec.Containers = nil
	if !reflect.DeepEqual(*rest, appsv1.Deployment{}) {
		return errors.New("patches fields other than template labels/annotations and containers")
	}
	tpl := &dep.Spec.Template
	for k, v := range patch.Spec.Template.Labels {
		if tpl.Labels == nil {
			tpl.Labels = map[string]string{}
		}
		tpl.Labels[k] = v
	}
	for k, v := range patch.Spec.Template.Annotations {
		if tpl.Annotations == nil {
			tpl.Annotations = map[string]string{}
		}
		tpl.Annotations[k] = v
	}
	for _, pc := range patch.Spec.Template.Spec.Containers {
		ctr := containerNamed(&tpl.Spec, pc.Name)
		if ctr == nil {
			return fmt.Errorf("container %s is not in the base", pc.Name)
		}
		other := pc.DeepCopy()
		other.Name, other.Image, other.Command, other.Args, other.EnvFrom, other.Env = "", "", nil, nil, nil, nil
		if !reflect.DeepEqual(*other, corev1.Container{}) {
			return fmt.Errorf("container %s: patches fields other than image, command, args, env and envFrom", pc.Name)
		}
		if pc.Image != "" {
			ctr.Image = pc.Image
		}
		if pc.Command != nil {
			ctr.Command = pc.Command
		}
		if pc.Args != nil {
			ctr.Args = pc.Args
		}
		if pc.EnvFrom != nil {
			ctr.EnvFrom = pc.EnvFrom
		}
		for _, e := range pc.Env {
			i := slices.IndexFunc(ctr.Env, func(x corev1.EnvVar) bool { return x.Name == e.Name })
			if i < 0 {
				ctr.Env = append(ctr.Env, e)
			} else {
				ctr.Env[i] = e
			}
		}
	}
	return nil
}

// datastorePolicy: the datastores' own policy admits the sidecar Pods on
// every upstream port.
func (c *checker) datastorePolicy(base *bundle, cfg *config.Config) {
	const where = "datastores"
	b := c.load("kubernetes/datastores")
	if b == nil {
		return
	}
	dep := base.deployment(deploymentName)
	if dep == nil {
		return
	}
	podLabels := labels.Set(dep.Spec.Template.Labels)
	nps := all[networkingv1.NetworkPolicy](b)
	if len(nps) == 0 {
		c.errorf("%s: no NetworkPolicy", where)
	}
	for _, np := range nps {
		if np.Namespace == "" {
			c.errorf("%s: NetworkPolicy %s has no namespace; it belongs in the datastores' namespace", where, np.Name)
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			c.errorf("%s: NetworkPolicy %s does not restrict ingress", where, np.Name)
		}
		allowed := map[int]bool{}
		for _, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				c.errorf("%s: NetworkPolicy %s has an ingress rule from anywhere", where, np.Name)
			}
			for _, peer := range rule.From {
				if peer.PodSelector == nil {
					c.errorf("%s: NetworkPolicy %s admits a peer without a pod selector", where, np.Name)
					continue
				}
				sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				if err != nil || !sel.Matches(podLabels) || sel.Empty() {
					c.errorf("%s: NetworkPolicy %s admits Pods %v, not (only) the tenantgate Pods", where, np.Name, peer.PodSelector)
				}
			}
			for p := range policyPorts(rule.Ports) {
				allowed[p] = true
			}
		}
		if cfg != nil {
			for p, key := range upstreamPorts(cfg) {
				if !allowed[p] {
					c.errorf("%s: NetworkPolicy %s does not admit port %d (%s)", where, np.Name, p, key)
				}
			}
		}
	}
}

func (c *checker) monitors(base *bundle) {
	dep := base.deployment(deploymentName)
	if dep == nil {
		return
	}
	podLabels := labels.Set(dep.Spec.Template.Labels)
	tg := containerNamed(&dep.Spec.Template.Spec, sidecarName)
	hasPort := func(name string) bool {
		return tg != nil && slices.ContainsFunc(tg.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
	}
	endpoint := func(where string, eps []monitorEndpoint) {
		if len(eps) == 0 {
			c.errorf("%s: no endpoints", where)
		}
		for _, ep := range eps {
			if ep.Path != "/metrics" || !hasPort(ep.Port) || ep.Port != "admin" {
				c.errorf("%s: endpoint %s%s, want /metrics on the admin port", where, ep.Port, ep.Path)
			}
		}
	}
	if b := c.load("kubernetes/monitoring/podmonitor"); b != nil {
		pms := all[podMonitor](b)
		if len(pms) != 1 {
			c.errorf("monitoring/podmonitor: want one PodMonitor, have %d", len(pms))
		}
		for _, pm := range pms {
			sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(podLabels) {
				c.errorf("monitoring/podmonitor: PodMonitor %s does not select the tenantgate Pods", pm.Metadata.Name)
			}
			endpoint("monitoring/podmonitor: PodMonitor "+pm.Metadata.Name, pm.Spec.PodMetricsEndpoints)
		}
	}
	if b := c.load("kubernetes/monitoring/servicemonitor"); b != nil {
		sms := all[serviceMonitor](b)
		if len(sms) != 1 {
			c.errorf("monitoring/servicemonitor: want one ServiceMonitor, have %d", len(sms))
		}
		for _, sm := range sms {
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			matched := 0
			for _, svc := range all[corev1.Service](b) {
				if err != nil || sel.Empty() || !sel.Matches(labels.Set(svc.Labels)) {
					continue
				}
				matched++
				if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
					c.errorf("monitoring/servicemonitor: Service %s does not select the tenantgate Pods", svc.Name)
				}
				for _, ep := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
						return p.Name == ep.Port && p.TargetPort.StrVal == "admin"
					}) {
						c.errorf("monitoring/servicemonitor: Service %s has no port %s targeting admin", svc.Name, ep.Port)
					}
				}
			}
			if matched != 1 {
				c.errorf("monitoring/servicemonitor: ServiceMonitor %s selects %d Services, want 1", sm.Metadata.Name, matched)
			}
			endpoint("monitoring/servicemonitor: ServiceMonitor "+sm.Metadata.Name, sm.Spec.Endpoints)
		}
	}
}

// alertThresholds: the pool-exhaustion alert's threshold is the base's
// postgres.pool_size.
func (c *checker) alertThresholds(cfg *config.Config) {
	data, err := os.ReadFile(c.path("prometheus/alerts.yaml"))
	if err != nil {
		c.errorf("%v", err)
		return
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		c.errorf("prometheus/alerts.yaml: %v", err)
		return
	}
	names := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				c.errorf("prometheus/alerts.yaml: rule %q lacks alert, expr, severity, summary or description", r.Alert)
			}
			if names[r.Alert] {
				c.errorf("prometheus/alerts.yaml: alert %s is defined twice", r.Alert)
			}
			names[r.Alert] = true
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					c.errorf("prometheus/alerts.yaml: %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if r.Alert == "TenantgatePostgresPoolExhausted" && cfg != nil && cfg.Postgres != nil {
				m := regexp.MustCompile(`>=\s*(\d+)\s*$`).FindStringSubmatch(strings.TrimSpace(r.Expr))
				if m == nil || m[1] != strconv.Itoa(cfg.Postgres.PoolSize) {
					c.errorf("prometheus/alerts.yaml: TenantgatePostgresPoolExhausted does not compare with postgres.pool_size %d of the base config", cfg.Postgres.PoolSize)
				}
			}
		}
	}
	for _, want := range []string{"TenantgateDown", "TenantgateNotReady", "TenantgateRefusalSpike", "TenantgateAuthFailureSpike", "TenantgatePostgresPoolExhausted"} {
		if !names[want] {
			c.errorf("prometheus/alerts.yaml: no alert %s", want)
		}
	}
}

// ---- compose ----

var composeVar = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?[?-][^}]*)?\}`)

func (c *checker) compose() {
	const where = "compose"
	data, err := os.ReadFile(c.path("compose/compose.yaml"))
	if err != nil {
		c.errorf("%v", err)
		return
	}
	type service struct {
		Image       string            `json:"image"`
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Volumes     []string          `json:"volumes"`
		NetworkMode string            `json:"network_mode"`
		StopGrace   string            `json:"stop_grace_period"`
		ReadOnly    bool              `json:"read_only"`
		CapDrop     []string          `json:"cap_drop"`
		SecurityOpt []string          `json:"security_opt"`
	}
	var file struct {
		Services map[string]service `json:"services"`
	}
	// Not strict: compose has many keys; the ones checked are typed.
	if err := yaml.Unmarshal(data, &file); err != nil {
		c.errorf("compose/compose.yaml: %v", err)
		return
	}
	for _, s := range []string{"postgres", "redis", "mongo", "neo4j", "tenantgate", "ragcore"} {
		if _, ok := file.Services[s]; !ok {
			c.errorf("%s: no service %s", where, s)
		}
	}
	tg, rc := file.Services["tenantgate"], file.Services["ragcore"]
	if rc.NetworkMode != "service:tenantgate" {
		c.errorf("%s: ragcore does not share tenantgate's network namespace (network_mode: service:tenantgate)", where)
	}
	for _, s := range []service{tg, rc} {
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			c.errorf("%s: tenantgate and ragcore must run read_only, cap_drop ALL, no-new-privileges", where)
		}
	}
	for k, v := range rc.Environment {
		if strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET") || strings.Contains(k, "CREDENTIAL") || strings.Contains(v, "${") {
			c.errorf("%s: ragcore's environment has %s=%s: it must hold no credential", where, k, v)
		}
	}
	// Every ${VAR} compose needs is in env.example.
	example, err := os.ReadFile(c.path("compose/env.example"))
	if err != nil {
		c.errorf("%v", err)
		return
	}
	dotenv := map[string]string{}
	for line := range strings.Lines(string(example)) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			dotenv[k] = v
		}
	}
	for _, m := range composeVar.FindAllStringSubmatch(string(data), -1) {
		if _, ok := dotenv[m[1]]; !ok {
			c.errorf("%s: compose.yaml uses ${%s}, which env.example does not define", where, m[1])
		}
	}
	// tenantgate's config, with tenantgate's environment as compose fills it.
	var cfgFile string
	for _, v := range tg.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == configArgList(tg.Command) {
			cfgFile = parts[0]
		}
	}
	if cfgFile == "" {
		c.errorf("%s: tenantgate's --config file is not a mounted file", where)
		return
	}
	cfgData, err := os.ReadFile(filepath.Join(c.path("compose"), cfgFile))
	if err != nil {
		c.errorf("%s: %v", where, err)
		return
	}
	resolve := func(good bool) func(string) (string, bool) {
		return func(k string) (string, bool) {
			v, ok := tg.Environment[k]
			if !ok {
				return "", false
			}
			return composeVar.ReplaceAllStringFunc(v, func(ref string) string {
				name := composeVar.FindStringSubmatch(ref)[1]
				if good {
					return strings.Repeat("a", 40) // what a real .env holds: 32+ URL-safe bytes
				}
				return dotenv[name]
			}), true
		}
	}
	cfg, err := config.Parse(cfgData, resolve(true))
	if err != nil {
		c.errorf("%s: %s does not load with tenantgate's compose environment: %v", where, cfgFile, err)
		return
	}
	if _, err := config.Parse(cfgData, resolve(false)); err == nil {
		c.errorf("%s: %s loads with env.example's placeholders; they should fail closed (a short jwt.secret)", where, cfgFile)
	}
	if d, err := time.ParseDuration(tg.StopGrace); err != nil || d <= cfg.Server.DrainTimeout.D() {
		c.errorf("%s: tenantgate's stop_grace_period %q does not exceed server.drain_timeout %s", where, tg.StopGrace, cfg.Server.DrainTimeout.D())
	}
	ports := map[string]bool{}
	for _, l := range cfg.Listeners() {
		if host, p, _ := net.SplitHostPort(l.Listen); net.ParseIP(host).IsLoopback() {
			ports[p] = true
		} else {
			c.errorf("%s: %s.listen %s is not loopback", where, l.Key, l.Listen)
		}
	}
	for k, v := range rc.Environment {
		if u, err := url.Parse(v); err == nil && strings.Contains(v, "://") {
			if !net.ParseIP(u.Hostname()).IsLoopback() || !ports[u.Port()] {
				c.errorf("%s: ragcore's %s=%s is not one of tenantgate's loopback listeners", where, k, v)
			}
		}
	}
}

func configArgList(args []string) string {
	return configArg(&corev1.Container{Args: args})
}

// ---- the checker can fail ----

// mutation breaks one invariant in a copy of deploy/.
type mutation struct {
	name, file, old, new string
	want                 string // a substring of the expected problem
}

func TestCheckerCatchesBrokenManifests(t *testing.T) {
	cases := []mutation{
		{"strict decoding", "kubernetes/base/deployment.yaml", "  revisionHistoryLimit: 5", "  revisionHistoryLimit: 5\n  revisionHistoryLimt: 5", "unknown field"},
		{"app gets a datastore secret", "kubernetes/base/deployment.yaml", "          envFrom:\n            - configMapRef:\n                name: app-datastores",
			"          env:\n            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef: {name: tenantgate-upstream, key: postgres-password}\n          envFrom:\n            - configMapRef:\n                name: app-datastores",
			"comes from Secret tenantgate-upstream"},
		{"app mounts the JWT secret", "kubernetes/base/deployment.yaml", "            - name: tmp\n              mountPath: /tmp",
			"            - name: tmp\n              mountPath: /tmp\n            - name: tenantgate-jwt\n              mountPath: /keys", "mounts Secret tenantgate-jwt"},
		{"readiness path", "kubernetes/base/deployment.yaml", "          readinessProbe:\n            httpGet: {path: /readyz, port: admin}",
			"          readinessProbe:\n            httpGet: {path: /healthz, port: admin}", "readiness probe path /healthz"},
		{"grace period", "kubernetes/base/deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20", "does not exceed preStop sleeps + server.drain_timeout"},
		{"privilege escalation", "kubernetes/base/deployment.yaml", "            allowPrivilegeEscalation: false\n            privileged: false\n            capabilities:\n              drop: [ALL]\n            seccompProfile:\n              type: RuntimeDefault\n          volumeMounts",
			"            allowPrivilegeEscalation: true\n            privileged: false\n            capabilities:\n              drop: [ALL]\n            seccompProfile:\n              type: RuntimeDefault\n          volumeMounts", "container app: allowPrivilegeEscalation is not false"},
		{"admin on loopback", "kubernetes/base/configmap.yaml", "listen: 0.0.0.0:9090", "listen: 127.0.0.1:9090", "not reachable from the kubelet"},
		{"unset variable", "kubernetes/base/configmap.yaml", "${TENANTGATE_NEO4J_PASSWORD}", "${NEO4J_PASSWORD}", "does not load"},
		{"key file not mounted", "kubernetes/base/configmap.yaml", "/etc/tenantgate/jwt/issuer.pem", "/etc/tenantgate/jwt/other.pem", "does not load"},
		{"data listener on all interfaces", "kubernetes/base/configmap.yaml", "listen: 127.0.0.1:6380", "listen: 0.0.0.0:6380", "not a loopback address"},
		{"app not pointed at the sidecar", "kubernetes/base/app-datastores.yaml", "REDIS_ADDR: 127.0.0.1:6380", "REDIS_ADDR: redis.datastores:6379", "not at tenantgate"},
		{"network policy label", "kubernetes/base/networkpolicy.yaml", "      tenantgate.io/sidecar: \"true\"", "      tenantgate.io/sidecar: \"yes\"", "no egress NetworkPolicy selects the Pod"},
		{"network policy port", "kubernetes/base/networkpolicy.yaml", "        - {port: 6379, protocol: TCP}   # Redis\n", "", "does not allow egress to port 6379"},
		{"kustomization lists every file", "kubernetes/base/kustomization.yaml", "  - networkpolicy.yaml\n", "", "does not list networkpolicy.yaml"},
		{"overlay patch", "kubernetes/overlays/ragcore/app-patch.yaml", "image: registry.example.com/ragcore:dev", "image: registry.example.com/other:dev", "not ragcore"},
		{"pod monitor port", "kubernetes/monitoring/podmonitor/podmonitor.yaml", "    - port: admin", "    - port: http", "want /metrics on the admin port"},
		{"datastore policy", "kubernetes/datastores/networkpolicy.yaml", "              tenantgate.io/sidecar: \"true\"", "              role: app", "not (only) the tenantgate Pods"},
		{"pool alert threshold", "prometheus/alerts.yaml", "state=\"active\"}) >= 20", "state=\"active\"}) >= 25", "postgres.pool_size 20"},
		{"compose credential in ragcore", "compose/compose.yaml", "      RAGCORE_REDIS: redis://127.0.0.1:6380/0", "      RAGCORE_REDIS: redis://127.0.0.1:6380/0\n      RAGCORE_CREDENTIAL: x", "must hold no credential"},
		{"unknown metric", "grafana/tenantgate-dashboard.json", "tenantgate_connections_active{", "tenantgate_connection_active{", "tenantgate_connection_active"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTree(t, ".")
			p := filepath.Join(dir, filepath.FromSlash(tc.file))
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte(tc.old)) {
				t.Fatalf("%s does not contain %q: update the mutation", tc.file, tc.old)
			}
			if err := os.WriteFile(p, bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := check(t, dir)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("breaking %q: want a problem containing %q, got %q", tc.name, tc.want, problems)
			}
		})
	}
}

// TestSecurityContextEveryContainer removes each field in turn from the app
// container's securityContext, so every field is known to be checked.
func TestSecurityContextEveryContainer(t *testing.T) {
	const file = "kubernetes/base/deployment.yaml"
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The app's securityContext is the second one in the file.
	for _, field := range []string{"runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", "drop: [ALL]", "type: RuntimeDefault"} {
		t.Run(field, func(t *testing.T) {
			idx := nthIndex(string(orig), "          securityContext:\n", 2)
			if idx < 0 {
				t.Fatal("no second container securityContext in deployment.yaml")
			}
			head, tail := string(orig[:idx]), string(orig[idx:])
			if !strings.Contains(tail, field) {
				t.Fatalf("the app securityContext has no %q", field)
			}
			broken := head + strings.Replace(tail, field, "", 1)
			dir := copyTree(t, ".")
			if err := os.WriteFile(filepath.Join(dir, file), []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := check(t, dir)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "container app") }) {
				t.Errorf("removing %q from the app's securityContext went unnoticed: %q", field, problems)
			}
		})
	}
}

func nthIndex(s, sub string, n int) int {
	off := 0
	for i := 1; ; i++ {
		j := strings.Index(s[off:], sub)
		if j < 0 {
			return -1
		}
		if i == n {
			return off + j
		}
		off += j + len(sub)
	}
}

// copyTree copies the deploy/ tree (only what the checks read) to a
// temporary directory.
func copyTree(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.HasSuffix(p, ".go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
