package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var allAPIServices = []string{
	"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io",
	"v1beta1.metrics.k8s.io", "v1alpha1.history.metrics.kapacitystack.io",
}

// apiServicesWithout lists the APIServices but those of the API group drop.
func apiServicesWithout(drop string) []string {
	return slices.DeleteFunc(slices.Clone(allAPIServices), func(s string) bool {
		_, group, _ := strings.Cut(s, ".")
		return group == drop
	})
}

type toggleCase struct {
	name    string
	rel     Release
	sets    []string
	wantErr string // a render error containing this
	check   func(t *testing.T, r rendered)
}

func wantNames(t *testing.T, r rendered, kind string, want ...string) {
	t.Helper()
	got := r.names(kind)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s objects: got %v, want %v", kind, got, want)
	}
}

func wantArgs(t *testing.T, r rendered, deployment string, want ...string) {
	t.Helper()
	args := r.args(t, deployment)
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("%s lacks argument %q; has %q", deployment, w, args)
		}
	}
}

func noArgPrefix(t *testing.T, r rendered, deployment, prefix string) {
	t.Helper()
	for _, a := range r.args(t, deployment) {
		if strings.HasPrefix(a, prefix) {
			t.Errorf("%s has argument %q", deployment, a)
		}
	}
}

func wantRule(t *testing.T, o Object, resource string, want bool) {
	t.Helper()
	has := false
	for _, rule := range o.Doc["rules"].([]any) {
		rs, _ := rule.(map[string]any)["resources"].([]any)
		if slices.Contains(rs, any(resource)) {
			has = true
		}
	}
	if has != want {
		t.Errorf("%s: rule for %s present=%v, want %v", o, resource, has, want)
	}
}

var toggleCases = []toggleCase{
	{name: "defaults", check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Deployment", "kapacity-adapter", "kapacity-manager")
		wantNames(t, r, "APIService", allAPIServices...)
		wantNames(t, r, "PodDisruptionBudget", "kapacity-adapter", "kapacity-manager")
		// The manager creates the jobs' ServiceAccount in each portrait's namespace.
		wantNames(t, r, "ServiceAccount", "kapacity-adapter", "kapacity-manager")
		wantNames(t, r, "Service", "kapacity-adapter", "kapacity-webhook")
		wantNames(t, r, "MutatingWebhookConfiguration", "kapacity-pod-webhook")
		wantNames(t, r, "ValidatingWebhookConfiguration", "kapacity-validating-webhook")
		wantNames(t, r, "ConfigMap", "kapacity-adapter-config")
		// Shipped empty, filled by the components: they need no create on Secrets.
		wantNames(t, r, "Secret", "kapacity-adapter-cert", "kapacity-webhook-cert")
		wantNames(t, r, "NetworkPolicy", "kapacity-adapter")
		wantNames(t, r, "ServiceMonitor")
		wantNames(t, r, "Certificate")
		wantNames(t, r, "Namespace") // helm install --create-namespace makes it
		wantNames(t, r, "ClusterRoleBinding", "kapacity-adapter", "kapacity-adapter:system:auth-delegator",
			"kapacity-metrics-reader:horizontal-pod-autoscaler", "kapacity-manager",
			"kapacity-adapter-apiservices-custom-metrics", "kapacity-adapter-apiservices-external-metrics",
			"kapacity-adapter-apiservices-resource-metrics", "kapacity-adapter-apiservices-history")
		wantArgs(t, r, "kapacity-manager", "--leader-elect", "--leader-election-namespace=kapacity-system",
			"--leader-election-id=kapacity-manager", "--webhook-cert-mode=self-signed",
			"--webhook-cert-secret-namespace=kapacity-system", "--webhook-configuration-name=kapacity-pod-webhook",
			"--webhook-validating-configuration-name=kapacity-validating-webhook", "--metrics-bind-address=:8443",
			"--algorithm-job-default-service-account=kapacity-algorithm-job",
			"--kapacity-image=ghcr.io/kapacitystack/kapacity:v0.1.0")
		// The jobs run the chart's image as `kapacity recommend`, not as an algorithm image.
		noArgPrefix(t, r, "kapacity-manager", "--algorithm-job-default-image-horizontal-predictive")
		// gRPC off: jobs read history through kube-apiserver; the legacy job namespace is the flag's default.
		noArgPrefix(t, r, "kapacity-manager", "--algorithm-job-default-metrics-server-addr")
		noArgPrefix(t, r, "kapacity-manager", "--algorithm-job-namespace")
		noArgPrefix(t, r, "kapacity-manager", "--metrics-secure")
		for _, d := range []string{"kapacity-adapter", "kapacity-manager"} {
			noArgPrefix(t, r, d, "--logging-format")
			noArgPrefix(t, r, d, "--v=")
		}
		wantArgs(t, r, "kapacity-adapter", "--prometheus-url=http://prometheus-operated.monitoring.svc:9090",
			"--serving-cert-mode=self-signed", "--serving-cert-secret-namespace=kapacity-system",
			"--serving-cert-secret-name=kapacity-adapter-cert", "--serving-cert-dns-names=kapacity-adapter.kapacity-system.svc")
		noArgPrefix(t, r, "kapacity-adapter", "--grpc-")
		noArgPrefix(t, r, "kapacity-adapter", "--tls-")
		wantIngressPorts(t, r, 6443)
		w, _ := r.find("MutatingWebhookConfiguration", "kapacity-pod-webhook")
		if got := dig(w.Doc["webhooks"].([]any)[0], "failurePolicy"); got != "Ignore" {
			t.Errorf("pod webhook failurePolicy %v, want Ignore (a manager outage must stop no pod)", got)
		}
		if c, _ := r.container(t, "kapacity-adapter"); c["image"] != "ghcr.io/kapacitystack/kapacity:v0.1.0" {
			t.Errorf("adapter image %v, want the chart's appVersion as tag", c["image"])
		}
		if d, _ := r.find("Deployment", "kapacity-adapter"); dig(d.Doc, "metadata", "labels", "app.kubernetes.io/managed-by") != "Helm" {
			t.Errorf("Helm's labels missing: %v", dig(d.Doc, "metadata", "labels"))
		}
	}},
	{name: "adapter off", sets: []string{"adapter.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Deployment", "kapacity-manager")
		wantNames(t, r, "APIService")
		wantNames(t, r, "ConfigMap")
		noArgPrefix(t, r, "kapacity-manager", "--algorithm-job-default-metrics-server-addr")
	}},
	{name: "manager off", sets: []string{"manager.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Deployment", "kapacity-adapter")
		wantNames(t, r, "MutatingWebhookConfiguration")
		wantNames(t, r, "ValidatingWebhookConfiguration")
		wantNames(t, r, "ServiceAccount", "kapacity-adapter")
		wantNames(t, r, "APIService", allAPIServices...)
	}},
	{name: "custom metrics off", sets: []string{"apiServices.customMetrics.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "APIService", apiServicesWithout("custom.metrics.k8s.io")...)
	}},
	{name: "external metrics off (KEDA)", sets: []string{"apiServices.externalMetrics.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "APIService", apiServicesWithout("external.metrics.k8s.io")...)
	}},
	{name: "resource metrics off (metrics-server)", sets: []string{"apiServices.resourceMetrics.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "APIService", apiServicesWithout("metrics.k8s.io")...)
		// metrics-server's APIService is out of the adapter's reach.
		if _, ok := r.find("ClusterRole", "kapacity-adapter-apiservices-resource-metrics"); ok {
			t.Error("the adapter may still patch v1beta1.metrics.k8s.io")
		}
	}},
	{name: "history off", sets: []string{"apiServices.history.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "APIService", apiServicesWithout("history.metrics.kapacitystack.io")...)
	}},
	{name: "KEDA and metrics-server both kept", sets: []string{"apiServices.externalMetrics.enabled=false,apiServices.resourceMetrics.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "APIService", "v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1alpha1.history.metrics.kapacitystack.io")
	}},
	{name: "cert-manager mode", sets: []string{"webhook.certMode=cert-manager"}, check: checkCertManager},
	{name: "cert-manager mode by Kapacity's useCertManager", sets: []string{"webhook.useCertManager=true"}, check: checkCertManager},
	{name: "cert-manager mode with an issuer", sets: []string{"webhook.certMode=cert-manager,webhook.certManager.issuerRef.kind=ClusterIssuer,webhook.certManager.issuerRef.name=ca"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Issuer")
		c, _ := r.find("Certificate", "kapacity-webhook")
		if dig(c.Doc, "spec", "issuerRef", "kind") != "ClusterIssuer" || dig(c.Doc, "spec", "issuerRef", "name") != "ca" {
			t.Errorf("Certificate issuerRef %v", dig(c.Doc, "spec", "issuerRef"))
		}
	}},
	{name: "external certificate", sets: []string{"webhook.certMode=external,webhook.certSecretName=my-cert,webhook.caBundle=Q0E="}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Certificate")
		wantArgs(t, r, "kapacity-manager", "--webhook-cert-mode=external")
		_, pod := r.container(t, "kapacity-manager")
		if got := dig(pod["volumes"].([]any)[0], "secret", "secretName"); got != "my-cert" {
			t.Errorf("certs volume from %v, want my-cert", got)
		}
		w, _ := r.find("MutatingWebhookConfiguration", "kapacity-pod-webhook")
		if got := dig(w.Doc["webhooks"].([]any)[0], "clientConfig", "caBundle"); got != "Q0E=" {
			t.Errorf("caBundle %v", got)
		}
	}},
	{name: "external certificate without caBundle", sets: []string{"webhook.certMode=external,webhook.certSecretName=my-cert"}, wantErr: "webhook.caBundle"},
	{name: "unknown certificate mode", sets: []string{"webhook.certMode=vault"}, wantErr: `webhook.certMode is "vault"`},
	{name: "webhook off", sets: []string{"webhook.enabled=false"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "MutatingWebhookConfiguration")
		wantNames(t, r, "ValidatingWebhookConfiguration")
		wantNames(t, r, "Secret", "kapacity-adapter-cert")
		wantNames(t, r, "Service", "kapacity-adapter")
		wantArgs(t, r, "kapacity-manager", "--webhook-port=0")
		rbac, _ := r.find("Role", "kapacity-manager")
		wantRule(t, rbac, "secrets", false)
	}},
	{name: "monitors on", sets: []string{"monitoring.serviceMonitor.enabled=true,monitoring.scraper.serviceAccount.name=prom,monitoring.scraper.serviceAccount.namespace=obs,monitoring.serviceMonitor.labels.release=prom"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "ServiceMonitor", "kapacity-adapter", "kapacity-manager")
		wantNames(t, r, "Service", "kapacity-adapter", "kapacity-webhook", "kapacity-manager-metrics")
		role, ok := r.find("ClusterRole", "kapacity-metrics-scraper")
		if !ok {
			t.Fatal("no scraper ClusterRole")
		}
		rule := role.Doc["rules"].([]any)[0]
		if !slices.Equal(dig(rule, "nonResourceURLs").([]any), []any{"/metrics"}) || !slices.Equal(dig(rule, "verbs").([]any), []any{"get"}) {
			t.Errorf("scraper rule %v, want nonResourceURLs [/metrics] verbs [get]", rule)
		}
		b, _ := r.find("ClusterRoleBinding", "kapacity-metrics-scraper")
		subject := b.Doc["subjects"].([]any)[0]
		if dig(subject, "name") != "prom" || dig(subject, "namespace") != "obs" {
			t.Errorf("scraper bound to %v, want obs/prom", subject)
		}
		sm, _ := r.find("ServiceMonitor", "kapacity-adapter")
		ep := sm.Doc["spec"].(map[string]any)["endpoints"].([]any)[0]
		if dig(ep, "scheme") != "https" || dig(ep, "port") != "https" || dig(ep, "bearerTokenFile") == nil {
			t.Errorf("adapter endpoint %v: want https with the scraper's token", ep)
		}
		if dig(sm.Doc, "metadata", "labels", "release") != "prom" {
			t.Errorf("ServiceMonitor labels %v lack release=prom", dig(sm.Doc, "metadata", "labels"))
		}
	}},
	// The alerts and the dashboard the chart installs are deploy/monitoring's, which promtool tests:
	// the chart's copies under files/monitoring must not drift from them.
	{name: "alerts and dashboard on", sets: []string{"monitoring.prometheusRule.enabled=true,monitoring.prometheusRule.labels.release=prom,monitoring.dashboards.enabled=true,monitoring.dashboards.namespace=grafana"}, check: func(t *testing.T, r rendered) {
		rule, ok := r.find("PrometheusRule", "kapacity")
		if !ok {
			t.Fatal("no PrometheusRule")
		}
		if dig(rule.Doc, "metadata", "labels", "release") != "prom" {
			t.Errorf("PrometheusRule labels %v lack release=prom", dig(rule.Doc, "metadata", "labels"))
		}
		rulesText, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "kapacity-rules.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := yaml.Unmarshal(rulesText, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rule.Doc["spec"], want) {
			t.Error("the PrometheusRule's spec differs from deploy/monitoring/kapacity-rules.yaml: copy it to the chart's files/monitoring/")
		}
		dash, ok := r.find("ConfigMap", "kapacity-dashboard")
		if !ok {
			t.Fatal("no dashboard ConfigMap")
		}
		if ns := dig(dash.Doc, "metadata", "namespace"); ns != "grafana" {
			t.Errorf("dashboard ConfigMap in namespace %v, want grafana", ns)
		}
		if dig(dash.Doc, "metadata", "labels", "grafana_dashboard") != "1" {
			t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard=1", dig(dash.Doc, "metadata", "labels"))
		}
		dashText, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "kapacity-dashboard.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := dig(dash.Doc, "data", "kapacity-dashboard.json"); got != strings.TrimRight(string(dashText), "\n") {
			t.Error("the dashboard ConfigMap differs from deploy/monitoring/kapacity-dashboard.json: copy it to the chart's files/monitoring/")
		}
	}},
	{name: "scraper RBAC without monitors", sets: []string{"monitoring.scraper.rbac=true"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "ServiceMonitor")
		wantNames(t, r, "ClusterRole", "kapacity-adapter", "kapacity-metrics-reader", "kapacity-history-reader", "kapacity-manager",
			"kapacity-manager-metrics-reader", "kapacity-algorithm-job", "kapacity-metrics-scraper",
			"kapacity-adapter-apiservices-custom-metrics", "kapacity-adapter-apiservices-external-metrics",
			"kapacity-adapter-apiservices-resource-metrics", "kapacity-adapter-apiservices-history")
	}},
	{name: "one manager replica", sets: []string{"manager.replicaCount=1,adapter.replicaCount=1"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "PodDisruptionBudget")
	}},
	{name: "one manager replica without leader election", sets: []string{"manager.replicaCount=1,manager.leaderElection.enabled=false"}, check: func(t *testing.T, r rendered) {
		noArgPrefix(t, r, "kapacity-manager", "--leader-elect")
	}},
	{name: "replicas without leader election", sets: []string{"manager.replicaCount=3,manager.leaderElection.enabled=false"}, wantErr: "manager.leaderElection.enabled"},
	{name: "another release and namespace", rel: Release{Name: "autoscale", Namespace: "platform"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Deployment", "autoscale-kapacity-adapter", "autoscale-kapacity-manager")
		wantArgs(t, r, "autoscale-kapacity-manager", "--leader-election-namespace=platform",
			"--webhook-cert-secret-name=autoscale-kapacity-webhook-cert", "--webhook-cert-secret-namespace=platform",
			"--webhook-configuration-name=autoscale-kapacity-pod-webhook",
			"--webhook-validating-configuration-name=autoscale-kapacity-validating-webhook",
			"--webhook-cert-dns-names=autoscale-kapacity-webhook,autoscale-kapacity-webhook.platform,autoscale-kapacity-webhook.platform.svc,autoscale-kapacity-webhook.platform.svc.cluster.local",
			"--algorithm-job-namespace=platform")
		wantArgs(t, r, "autoscale-kapacity-adapter", "--serving-cert-secret-namespace=platform",
			"--serving-cert-secret-name=autoscale-kapacity-adapter-cert", "--serving-cert-dns-names=autoscale-kapacity-adapter.platform.svc")
		// The jobs' role keeps the name the manager binds.
		wantNames(t, r, "ClusterRole", "autoscale-kapacity-adapter", "autoscale-kapacity-metrics-reader", "autoscale-kapacity-history-reader",
			"autoscale-kapacity-manager", "autoscale-kapacity-manager-metrics-reader", "kapacity-algorithm-job",
			"autoscale-kapacity-adapter-apiservices-custom-metrics", "autoscale-kapacity-adapter-apiservices-external-metrics",
			"autoscale-kapacity-adapter-apiservices-resource-metrics", "autoscale-kapacity-adapter-apiservices-history")
		a, _ := r.find("APIService", "v1beta1.custom.metrics.k8s.io")
		if dig(a.Doc, "spec", "service", "name") != "autoscale-kapacity-adapter" || dig(a.Doc, "spec", "service", "namespace") != "platform" {
			t.Errorf("APIService service %v", dig(a.Doc, "spec", "service"))
		}
		w, _ := r.find("MutatingWebhookConfiguration", "autoscale-kapacity-pod-webhook")
		if got := dig(w.Doc["webhooks"].([]any)[0], "namespaceSelector", "matchExpressions").([]any)[0]; !slices.Contains(dig(got, "values").([]any), any("platform")) {
			t.Errorf("webhook does not exclude its own namespace: %v", got)
		}
	}},
	{name: "Prometheus auth and TLS", sets: []string{"prometheus.address=https://prom.example:9091/prefix,prometheus.auth.bearerToken.secretName=prom-token,prometheus.auth.basicAuth.username=kapacity,prometheus.auth.basicAuth.passwordSecretName=prom-basic,prometheus.tls.caConfigMapName=prom-ca,prometheus.tls.clientCertSecretName=prom-client,prometheus.tls.serverName=prom,prometheus.headers.X-Scope-OrgID=tenant-a"}, check: func(t *testing.T, r rendered) {
		wantArgs(t, r, "kapacity-adapter", "--prometheus-url=https://prom.example:9091/prefix",
			"--prometheus-token-file=/var/run/kapacity/prometheus/token/token",
			"--prometheus-basic-auth-username=kapacity", "--prometheus-basic-auth-password-file=/var/run/kapacity/prometheus/basic-auth/password",
			"--prometheus-ca-file=/var/run/kapacity/prometheus/ca/ca.crt",
			"--prometheus-client-tls-cert-file=/var/run/kapacity/prometheus/client-tls/tls.crt",
			"--prometheus-client-tls-key-file=/var/run/kapacity/prometheus/client-tls/tls.key",
			"--prometheus-tls-server-name=prom", "--prometheus-header=X-Scope-OrgID=tenant-a")
		c, pod := r.container(t, "kapacity-adapter")
		var mounts, vols []string
		for _, m := range c["volumeMounts"].([]any) {
			mounts = append(mounts, dig(m, "name").(string))
		}
		for _, v := range pod["volumes"].([]any) {
			vols = append(vols, dig(v, "name").(string))
		}
		for _, want := range []string{"prometheus-token", "prometheus-basic-auth", "prometheus-ca", "prometheus-client-tls"} {
			if !slices.Contains(mounts, want) || !slices.Contains(vols, want) {
				t.Errorf("volume %s not mounted: mounts %v, volumes %v", want, mounts, vols)
			}
		}
	}},
	{name: "default adapter config is the embedded one", check: func(t *testing.T, r rendered) {
		want, err := os.ReadFile(filepath.Join(root, defaultConfig))
		if err != nil {
			t.Fatal(err)
		}
		cm, _ := r.find("ConfigMap", "kapacity-adapter-config")
		if got := dig(cm.Doc, "data", "config.yaml"); got != string(want) {
			t.Errorf("config.yaml is not %s byte for byte:\n%v", defaultConfig, got)
		}
	}},
	{name: "adapter config as a map", sets: []string{"prometheus.metrics.config.rules[0].seriesQuery=up,prometheus.metrics.relistInterval=5m,prometheus.metrics.maxAge=15m"}, check: func(t *testing.T, r rendered) {
		cm, _ := r.find("ConfigMap", "kapacity-adapter-config")
		if got := dig(cm.Doc, "data", "config.yaml"); got != "rules:\n- seriesQuery: up\n" {
			t.Errorf("config.yaml %q", got)
		}
		wantArgs(t, r, "kapacity-adapter", "--metrics-relist-interval=5m", "--metrics-max-age=15m")
	}},
	{name: "adapter config as text", sets: []string{"prometheus.metrics.config=rules: []"}, check: func(t *testing.T, r rendered) {
		cm, _ := r.find("ConfigMap", "kapacity-adapter-config")
		if got := dig(cm.Doc, "data", "config.yaml"); got != "rules: []\n" {
			t.Errorf("config.yaml %q", got)
		}
	}},
	{name: "Kapacity's tuning and image keys", sets: []string{"image.repository=registry.example/kapacity,image.tag=dev,kubeAPIQPS=100,kubeAPIBurst=200,reconcileConcurrency=16,grpcServer.enabled=true,grpcServer.bindPort=9191,algorithmJob.defaultMetricsServerAddr=grpc.example:9090,algorithmJob.defaultServiceAccount=jobs,algorithmJob.defaultImage.horizontalPredictive=algo:v1"}, check: func(t *testing.T, r rendered) {
		wantArgs(t, r, "kapacity-manager", "--kube-api-qps=100", "--kube-api-burst=200", "--reconcile-concurrency=16",
			"--algorithm-job-default-metrics-server-addr=grpc.example:9090", "--algorithm-job-default-service-account=jobs",
			"--algorithm-job-default-image-horizontal-predictive=algo:v1", "--kapacity-image=registry.example/kapacity:dev")
		wantArgs(t, r, "kapacity-adapter", "--grpc-port=9191")
		wantNames(t, r, "ServiceAccount", "kapacity-adapter", "kapacity-manager")
		cr, _ := r.find("ClusterRole", "kapacity-manager")
		if !allowsName(cr, "patch", "serviceaccounts", "jobs") || allowsName(cr, "patch", "serviceaccounts", "kapacity-algorithm-job") {
			t.Errorf("the manager's ServiceAccount rights do not follow defaultServiceAccount: %v", cr.Doc["rules"])
		}
		if c, _ := r.container(t, "kapacity-manager"); c["image"] != "registry.example/kapacity:dev" {
			t.Errorf("manager image %v", c["image"])
		}
	}},
	{name: "gRPC off (default)", sets: []string{"grpcServer.enabled=false"}, check: func(t *testing.T, r rendered) {
		noArgPrefix(t, r, "kapacity-adapter", "--grpc-port")
		noArgPrefix(t, r, "kapacity-manager", "--algorithm-job-default-metrics-server-addr")
		svc, _ := r.find("Service", "kapacity-adapter")
		if ports := dig(svc.Doc, "spec", "ports").([]any); len(ports) != 1 {
			t.Errorf("adapter Service ports %v, want https only", ports)
		}
		wantIngressPorts(t, r, 6443)
	}},
	{name: "gRPC on", sets: []string{"grpcServer.enabled=true"}, check: func(t *testing.T, r rendered) {
		// Beyond loopback: TLS with the serving certificate, behind the NetworkPolicy.
		wantArgs(t, r, "kapacity-adapter", "--grpc-port=9090", "--grpc-bind-address=0.0.0.0",
			"--grpc-tls-cert-file=/tmp/certs/tls.crt", "--grpc-tls-key-file=/tmp/certs/tls.key")
		svc, _ := r.find("Service", "kapacity-adapter")
		if ports := dig(svc.Doc, "spec", "ports").([]any); len(ports) != 2 {
			t.Errorf("adapter Service ports %v, want https and grpc", ports)
		}
		wantIngressPorts(t, r, 6443, 9090)
		np, _ := r.find("NetworkPolicy", "kapacity-adapter")
		grpc := dig(np.Doc, "spec", "ingress").([]any)[1]
		from := dig(grpc, "from").([]any)[0]
		if dig(from, "podSelector", "matchLabels", "app.kubernetes.io/component") != "kapacity-algorithm-job" {
			t.Errorf("gRPC admitted from %v, want algorithm-job pods only", from)
		}
		// The jobs would need the adapter's CA: METRICS_SERVER_ADDR stays the user's choice.
		noArgPrefix(t, r, "kapacity-manager", "--algorithm-job-default-metrics-server-addr")
	}},
	{name: "gRPC on with cert-manager", sets: []string{"grpcServer.enabled=true,adapter.servingCert.mode=cert-manager"}, check: func(t *testing.T, r rendered) {
		wantArgs(t, r, "kapacity-adapter", "--grpc-tls-cert-file=/var/run/kapacity/serving-cert/tls.crt",
			"--grpc-tls-key-file=/var/run/kapacity/serving-cert/tls.key")
	}},
	{name: "adapter certificate by cert-manager", sets: []string{"adapter.servingCert.mode=cert-manager"}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Certificate", "kapacity-adapter")
		wantNames(t, r, "Issuer", "kapacity-adapter-selfsigned")
		c, _ := r.find("Certificate", "kapacity-adapter")
		if got := dig(c.Doc, "spec", "secretName"); got != "kapacity-adapter-cert" {
			t.Errorf("Certificate secret %v", got)
		}
		if got := dig(c.Doc, "spec", "dnsNames").([]any); !slices.Contains(got, any("kapacity-adapter.kapacity-system.svc")) {
			t.Errorf("Certificate dnsNames %v lack the name kube-apiserver verifies", got)
		}
		for _, name := range allAPIServices {
			a, _ := r.find("APIService", name)
			if got := dig(a.Doc, "metadata", "annotations", "cert-manager.io/inject-ca-from"); got != "kapacity-system/kapacity-adapter" {
				t.Errorf("%s inject-ca-from %v", name, got)
			}
		}
		wantArgs(t, r, "kapacity-adapter", "--serving-cert-mode=external",
			"--tls-cert-file=/var/run/kapacity/serving-cert/tls.crt", "--tls-private-key-file=/var/run/kapacity/serving-cert/tls.key")
		noArgPrefix(t, r, "kapacity-adapter", "--serving-cert-secret")
		// cert-manager writes the Secret and the bundles: the adapter loses those rights.
		wantNames(t, r, "Secret", "kapacity-webhook-cert")
		wantNames(t, r, "Role", "kapacity-manager")
		for _, api := range []string{"custom-metrics", "external-metrics", "resource-metrics", "history"} {
			if _, ok := r.find("ClusterRole", "kapacity-adapter-apiservices-"+api); ok {
				t.Errorf("ClusterRole kapacity-adapter-apiservices-%s rendered without self-signed mode", api)
			}
		}
		wantMount(t, r, "kapacity-adapter", "serving-cert", "kapacity-adapter-cert")
	}},
	{name: "adapter certificate given", sets: []string{"adapter.servingCert.mode=external,adapter.servingCert.secretName=adapter-tls,adapter.servingCert.caBundle=Q0E="}, check: func(t *testing.T, r rendered) {
		wantNames(t, r, "Certificate")
		for _, name := range allAPIServices {
			a, _ := r.find("APIService", name)
			if got := dig(a.Doc, "spec", "caBundle"); got != "Q0E=" {
				t.Errorf("%s caBundle %v", name, got)
			}
		}
		wantArgs(t, r, "kapacity-adapter", "--serving-cert-mode=external")
		wantMount(t, r, "kapacity-adapter", "serving-cert", "adapter-tls")
	}},
	{name: "adapter certificate given without caBundle", sets: []string{"adapter.servingCert.mode=external,adapter.servingCert.secretName=adapter-tls"}, wantErr: "adapter.servingCert.caBundle"},
	{name: "adapter certificate given without Secret", sets: []string{"adapter.servingCert.mode=external,adapter.servingCert.caBundle=Q0E="}, wantErr: "adapter.servingCert.secretName"},
	{name: "unknown adapter certificate mode", sets: []string{"adapter.servingCert.mode=insecure"}, wantErr: `adapter.servingCert.mode is "insecure"`},
	{name: "manager metrics in plain HTTP", sets: []string{"manager.metrics.secure=false,manager.metricsPort=8080,monitoring.serviceMonitor.enabled=true"}, check: func(t *testing.T, r rendered) {
		wantArgs(t, r, "kapacity-manager", "--metrics-secure=false", "--metrics-bind-address=:8080")
		cr, _ := r.find("ClusterRole", "kapacity-manager")
		wantRule(t, cr, "tokenreviews", false)
		sm, _ := r.find("ServiceMonitor", "kapacity-manager")
		ep := sm.Doc["spec"].(map[string]any)["endpoints"].([]any)[0]
		if dig(ep, "scheme") != "http" || dig(ep, "bearerTokenFile") != nil {
			t.Errorf("manager endpoint %v: want plain http without a token", ep)
		}
	}},
	{name: "Kapacity's old job namespace", sets: []string{"algorithmJob.namespace=kapacity"}, check: func(t *testing.T, r rendered) {
		wantArgs(t, r, "kapacity-manager", "--algorithm-job-namespace=kapacity")
	}},
	{name: "the removed job ServiceAccount toggle", sets: []string{"algorithmJob.serviceAccount.create=false"}, wantErr: "algorithmJob.serviceAccount is gone"},
	{name: "Kapacity's top-level replicaCount", sets: []string{"replicaCount=3"}, wantErr: "set adapter.replicaCount and manager.replicaCount instead"},
	{name: "Kapacity's top-level resources", sets: []string{"resources.requests.cpu=1"}, wantErr: "set adapter.resources and manager.resources instead"},
	// Kapacity's keys of prometheus-adapter's kubeconfig-based auth to Prometheus.
	{name: "Kapacity's in-cluster Prometheus auth", sets: []string{"prometheus.auth.incluster=true"}, check: func(t *testing.T, r rendered) {
		wantArgs(t, r, "kapacity-adapter", "--prometheus-auth-incluster")
		noArgPrefix(t, r, "kapacity-adapter", "--prometheus-auth-config")
	}},
	{name: "Kapacity's kubeconfig Prometheus auth", sets: []string{"prometheus.auth.config=apiVersion: v1"}, check: func(t *testing.T, r rendered) {
		wantArgs(t, r, "kapacity-adapter", "--prometheus-auth-config=/var/run/kapacity/prometheus/auth/kubeconfig")
		wantMount(t, r, "kapacity-adapter", "prometheus-auth", "kapacity-adapter-prometheus-auth")
		s, ok := r.find("Secret", "kapacity-adapter-prometheus-auth")
		if !ok || dig(s.Doc, "stringData", "kubeconfig") != "apiVersion: v1\n" {
			t.Errorf("kubeconfig Secret %v", s.Doc)
		}
	}},
	{name: "both kubeconfig Prometheus auths", sets: []string{"prometheus.auth.incluster=true,prometheus.auth.config=apiVersion: v1"}, wantErr: "are alternatives"},
	{name: "Kapacity's metrics-api provider", sets: []string{"metricProvider=metrics-api"}, wantErr: `metricProvider "metrics-api" is not supported`},
	{name: "Kapacity's prometheus provider", sets: []string{"metricProvider=prometheus"}, check: func(t *testing.T, r rendered) {}},
	{name: "Kapacity's zap log level", sets: []string{"zap.logLevel=2"}, wantErr: "set logging.verbosity (-v) and logging.format"},
	{name: "JSON logs", sets: []string{"logging.format=json,logging.verbosity=2"}, check: func(t *testing.T, r rendered) {
		for _, d := range []string{"kapacity-adapter", "kapacity-manager"} {
			wantArgs(t, r, d, "--logging-format=json", "--v=2")
		}
	}},
	{name: "basic auth without its password", sets: []string{"prometheus.auth.basicAuth.username=kapacity"}, wantErr: "passwordSecretName is required"},
	{name: "no Prometheus address", sets: []string{"prometheus.address="}, wantErr: "prometheus.address is required"},
}

func checkCertManager(t *testing.T, r rendered) {
	wantNames(t, r, "Certificate", "kapacity-webhook")
	wantNames(t, r, "Issuer", "kapacity-webhook-selfsigned")
	w, _ := r.find("MutatingWebhookConfiguration", "kapacity-pod-webhook")
	if got := dig(w.Doc, "metadata", "annotations", "cert-manager.io/inject-ca-from"); got != "kapacity-system/kapacity-webhook" {
		t.Errorf("inject-ca-from %v", got)
	}
	c, _ := r.find("Certificate", "kapacity-webhook")
	if got := dig(c.Doc, "spec", "secretName"); got != "kapacity-webhook-cert" {
		t.Errorf("Certificate secret %v", got)
	}
	wantArgs(t, r, "kapacity-manager", "--webhook-cert-mode=external", "--webhook-cert-dir=/certs")
	noArgPrefix(t, r, "kapacity-manager", "--webhook-cert-secret-name")
	_, pod := r.container(t, "kapacity-manager")
	if got := dig(pod["volumes"].([]any)[0], "secret", "secretName"); got != "kapacity-webhook-cert" {
		t.Errorf("certs volume from %v, want the Certificate's Secret", got)
	}
	// The manager no longer writes the Secret or the webhook's caBundle: it loses those rights.
	role, _ := r.find("Role", "kapacity-manager")
	wantRule(t, role, "secrets", false)
	cr, _ := r.find("ClusterRole", "kapacity-manager")
	wantRule(t, cr, "mutatingwebhookconfigurations", false)
	wantRule(t, cr, "validatingwebhookconfigurations", false)
	v, _ := r.find("ValidatingWebhookConfiguration", "kapacity-validating-webhook")
	if got := dig(v.Doc, "metadata", "annotations", "cert-manager.io/inject-ca-from"); got != "kapacity-system/kapacity-webhook" {
		t.Errorf("validating webhook inject-ca-from %v", got)
	}
	wantNames(t, r, "Secret", "kapacity-adapter-cert")
}

// wantIngressPorts checks the ports the adapter's NetworkPolicy admits.
func wantIngressPorts(t *testing.T, r rendered, ports ...float64) {
	t.Helper()
	np, ok := r.find("NetworkPolicy", "kapacity-adapter")
	if !ok {
		t.Fatal("no NetworkPolicy kapacity-adapter")
	}
	var got []float64
	for _, rule := range dig(np.Doc, "spec", "ingress").([]any) {
		for _, p := range dig(rule, "ports").([]any) {
			got = append(got, dig(p, "port").(float64))
		}
	}
	if !slices.Equal(got, ports) {
		t.Errorf("NetworkPolicy admits ports %v, want %v", got, ports)
	}
}

// wantMount checks that Deployment name mounts volume from Secret secret.
func wantMount(t *testing.T, r rendered, name, volume, secret string) {
	t.Helper()
	c, pod := r.container(t, name)
	mounted := false
	for _, m := range c["volumeMounts"].([]any) {
		mounted = mounted || dig(m, "name") == volume
	}
	from := ""
	for _, v := range pod["volumes"].([]any) {
		if dig(v, "name") == volume {
			from, _ = dig(v, "secret", "secretName").(string)
		}
	}
	if !mounted || from != secret {
		t.Errorf("%s: volume %s mounted=%v from Secret %q, want Secret %q", name, volume, mounted, from, secret)
	}
}

// allowsName says whether one of o's rules allows verb on resource name by resourceNames.
func allowsName(o Object, verb, resource, name string) bool {
	for _, rule := range o.Doc["rules"].([]any) {
		verbs, _ := dig(rule, "verbs").([]any)
		resources, _ := dig(rule, "resources").([]any)
		names, _ := dig(rule, "resourceNames").([]any)
		if slices.Contains(verbs, any(verb)) && slices.Contains(resources, any(resource)) && slices.Contains(names, any(name)) {
			return true
		}
	}
	return false
}

// TestChartToggles renders the chart as `helm template` does with each toggle and checks what a
// user relies on: which objects exist, their wiring, and the invariants of every render.
func TestChartToggles(t *testing.T) {
	for _, tc := range toggleCases {
		t.Run(tc.name, func(t *testing.T) {
			rel := tc.rel
			if rel.Name == "" {
				rel = defaultRelease
			}
			r, err := render(t, rel, tc.sets...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("render error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkEveryRender(t, rel, r)
			tc.check(t, r)
		})
	}
}

// TestChartLint runs helm lint (strict) on the defaults and on every toggle that renders.
func TestChartLint(t *testing.T) {
	dir := filepath.Join(root, chartDir)
	for _, tc := range toggleCases {
		if tc.wantErr != "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			values, err := userValues(nil, tc.sets)
			if err != nil {
				t.Fatal(err)
			}
			if err := Lint(dir, "kapacity-system", values); err != nil {
				t.Error(err)
			}
		})
	}
}
