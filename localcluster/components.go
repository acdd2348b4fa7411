package localcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	serviceClusterIPRange = "10.0.0.0/24"
	podCIDR               = "10.244.0.1/16"
	nodeIP                = "10.1.0.1"
	// kwok manages only nodes carrying this annotation, so the bed never touches anything else.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
)

func (c *Cluster) startEtcd(port ports) (*process, error) {
	bin, err := findBinary(c.BinDir, "etcd")
	if err != nil {
		return nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", port.etcdClient)
	peer := fmt.Sprintf("http://127.0.0.1:%d", port.etcdPeer)
	return c.track(startProcess("etcd", bin, c.logDir(),
		flag("name", "kapacity-test"),
		flag("data-dir", filepath.Join(c.Dir, "etcd")),
		flag("listen-client-urls", client),
		flag("advertise-client-urls", client),
		flag("listen-peer-urls", peer),
		flag("initial-advertise-peer-urls", peer),
		flag("initial-cluster", "kapacity-test="+peer),
		// Durability is irrelevant for a throw-away bed; fsync dominates etcd latency on CI disks.
		flag("unsafe-no-fsync", true),
		flag("log-level", "warn"),
	))
}

func waitEtcd(ctx context.Context, etcd *process, port int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	return etcd.waitFor(ctx, "health", 30*time.Second, func(ctx context.Context) error {
		body, err := httpGet(ctx, http.DefaultClient, url)
		if err != nil {
			return err
		}
		if !strings.Contains(body, `"health":"true"`) {
			return fmt.Errorf("unhealthy: %s", body)
		}
		return nil
	})
}

func (c *Cluster) startAPIServer(port ports, certs *pki) (*process, error) {
	bin, err := findBinary(c.BinDir, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	return c.track(startProcess("kube-apiserver", bin, c.logDir(),
		flag("etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", port.etcdClient)),
		flag("bind-address", "127.0.0.1"),
		flag("advertise-address", "127.0.0.1"),
		flag("secure-port", port.apiserver),
		flag("cert-dir", filepath.Join(c.Dir, "pki")),
		flag("tls-cert-file", certs.apiserverCert),
		flag("tls-private-key-file", certs.apiserverKey),
		flag("client-ca-file", certs.caCert),
		flag("service-account-issuer", "https://kubernetes.default.svc.cluster.local"),
		flag("service-account-key-file", certs.serviceAccountPub),
		flag("service-account-signing-key-file", certs.serviceAccountKey),
		flag("service-cluster-ip-range", serviceClusterIPRange),
		flag("authorization-mode", "RBAC"),
		flag("allow-privileged", true),
		// API aggregation: the aggregator authenticates to extension servers with the
		// front-proxy client certificate and passes the user in these headers.
		flag("requestheader-client-ca-file", certs.frontProxyCACert),
		flag("requestheader-allowed-names", "front-proxy-client"),
		flag("requestheader-username-headers", "X-Remote-User"),
		flag("requestheader-group-headers", "X-Remote-Group"),
		flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
		flag("proxy-client-cert-file", certs.frontProxyClientCert),
		flag("proxy-client-key-file", certs.frontProxyClientKey),
		// 127.0.0.1 is not a valid endpoint for the kubernetes Service; without this the
		// apiserver retries forever and floods its log.
		flag("endpoint-reconciler-type", "none"),
		flag("profiling", false),
	))
}

func (c *Cluster) writeKubeconfig(apiserverPort int, certs *pki) error {
	config := clientcmdapi.NewConfig()
	config.Clusters["kapacity"] = &clientcmdapi.Cluster{
		Server:                   fmt.Sprintf("https://127.0.0.1:%d", apiserverPort),
		CertificateAuthorityData: certs.caPEM,
	}
	config.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: certs.adminCertPEM,
		ClientKeyData:         certs.adminKeyPEM,
	}
	config.Contexts["kapacity"] = &clientcmdapi.Context{Cluster: "kapacity", AuthInfo: "admin"}
	config.CurrentContext = "kapacity"
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*config, c.Kubeconfig); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	restConfig, err := clientcmd.NewNonInteractiveClientConfig(*config, "kapacity", nil, nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	// Tests create objects in bursts; client-go's default 5 QPS would make them crawl.
	restConfig.QPS, restConfig.Burst = 200, 400
	c.Config = restConfig
	if c.Client, err = kubernetes.NewForConfig(restConfig); err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	return nil
}

func (c *Cluster) waitAPIServer(ctx context.Context, apiserver *process) error {
	return apiserver.waitFor(ctx, "/readyz", time.Minute, func(ctx context.Context) error {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		return nil
	})
}

func (c *Cluster) startControllerManager(port ports, certs *pki) (*process, error) {
	bin, err := findBinary(c.BinDir, "kube-controller-manager")
	if err != nil {
		return nil, err
	}
	return c.track(startProcess("kube-controller-manager", bin, c.logDir(),
		flag("kubeconfig", c.Kubeconfig),
		flag("authentication-kubeconfig", c.Kubeconfig),
		flag("authorization-kubeconfig", c.Kubeconfig),
		flag("bind-address", "127.0.0.1"),
		flag("secure-port", port.controllerManager),
		flag("cert-dir", filepath.Join(c.Dir, "pki")),
		flag("leader-elect", false),
		// Each controller acts as its own service account, as in production, so that RBAC on
		// the metrics APIs is exercised the way real clusters exercise it.
		flag("use-service-account-credentials", true),
		flag("service-account-private-key-file", certs.serviceAccountKey),
		flag("root-ca-file", certs.caCert),
		flag("cluster-signing-cert-file", certs.caCert),
		flag("cluster-signing-key-file", certs.caKey),
		flag("service-cluster-ip-range", serviceClusterIPRange),
		flag("controllers", "*"),
		flag("horizontal-pod-autoscaler-sync-period", c.opts.HPASyncPeriod),
		flag("profiling", false),
	))
}

func (c *Cluster) startScheduler(port ports) (*process, error) {
	bin, err := findBinary(c.BinDir, "kube-scheduler")
	if err != nil {
		return nil, err
	}
	return c.track(startProcess("kube-scheduler", bin, c.logDir(),
		flag("kubeconfig", c.Kubeconfig),
		flag("authentication-kubeconfig", c.Kubeconfig),
		flag("authorization-kubeconfig", c.Kubeconfig),
		flag("bind-address", "127.0.0.1"),
		flag("secure-port", port.scheduler),
		flag("leader-elect", false),
		flag("profiling", false),
	))
}

func (c *Cluster) startKwok() (*process, error) {
	bin, err := findBinary(c.BinDir, "kwok")
	if err != nil {
		return nil, err
	}
	// An explicit config keeps a developer's ~/.kwok/kwok.yaml out of the bed. It holds no
	// stages, so kwok applies its default node and pod lifecycles (pods become Running+Ready).
	config := filepath.Join(c.Dir, "kwok.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing kwok config: %w", err)
	}
	return c.track(startProcess("kwok", bin, c.logDir(),
		flag("kubeconfig", c.Kubeconfig),
		flag("config", config),
		flag("manage-all-nodes", false),
		flag("manage-nodes-with-annotation-selector", kwokNodeAnnotation+"=fake"),
		flag("cidr", podCIDR),
		flag("node-ip", nodeIP),
		// Without leases the node lifecycle controller marks the nodes NotReady after ~50 s
		// and evicts every pod.
		flag("node-lease-duration-seconds", 40),
	))
}

// NodeName returns the name of the i-th kwok node.
func NodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

func (c *Cluster) createNodes(ctx context.Context) error {
	for i := range c.opts.Nodes {
		capacity := corev1.ResourceList{}
		for name, value := range map[corev1.ResourceName]string{
			corev1.ResourceCPU: c.opts.NodeCPU, corev1.ResourceMemory: c.opts.NodeMemory, corev1.ResourcePods: "250",
		} {
			q, err := parseQuantity(string(name), value)
			if err != nil {
				return err
			}
			capacity[name] = q
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        NodeName(i),
				Annotations: map[string]string{kwokNodeAnnotation: "fake"},
				Labels: map[string]string{
					"type":                   "kwok",
					"kubernetes.io/hostname": NodeName(i),
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
				},
			},
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", node.Name, err)
		}
	}
	return nil
}

// waitControllers waits for the service-account controllers: until the default service account
// exists, no pod can be admitted.
func (c *Cluster) waitControllers(ctx context.Context, controllerManager *process) error {
	return controllerManager.waitFor(ctx, "default service account", time.Minute, func(ctx context.Context) error {
		_, err := c.Client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

func (c *Cluster) waitNodesReady(ctx context.Context, kwok *process) error {
	return kwok.waitFor(ctx, "nodes Ready", time.Minute, func(ctx context.Context) error {
		nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, node := range nodes.Items {
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready < c.opts.Nodes {
			return fmt.Errorf("%d of %d nodes Ready", ready, c.opts.Nodes)
		}
		return nil
	})
}

func httpGet(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body), nil
}
