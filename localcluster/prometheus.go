package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// metricsBackend is the bed's Prometheus-compatible time-series database: it scrapes the targets
// described by file-based service discovery files in targets (so tests add targets at any time
// without a reload) and answers Prometheus' HTTP query API at url.
type metricsBackend interface {
	// url is the base URL of the query API.
	url() string
	// targets is the folder of the file_sd JSON files.
	targets() string
	waitReady(ctx context.Context) error
	// backfill stores historical samples given as OpenMetrics text with timestamps.
	backfill(ctx context.Context, openMetrics io.Reader) error
	stop()
}

// The metrics backends a bed can run (Options.MetricsBackend).
const (
	// Prometheus is Debian's prometheus package.
	Prometheus = "prometheus"
	// VictoriaMetrics is Debian's victoria-metrics package (single-node), a scale-out-class
	// backend with Prometheus' query API.
	VictoriaMetrics = "victoriametrics"
)

// prometheusServer is the bed's Prometheus.
type prometheusServer struct {
	proc       *process
	baseURL    string
	targetsDir string
	c          *Cluster
}

func (p *prometheusServer) url() string     { return p.baseURL }
func (p *prometheusServer) targets() string { return p.targetsDir }
func (p *prometheusServer) stop()           { p.proc.stop(10 * time.Second) }

// scrapeConfig is the scrape configuration both backends read: the file-discovered targets,
// and the server itself under the job name "prometheus" when selfTarget is set.
func scrapeConfig(interval time.Duration, selfTarget, targetsDir string) string {
	self := ""
	if selfTarget != "" {
		self = fmt.Sprintf(`  - job_name: prometheus
    static_configs:
      - targets: [%q]
`, selfTarget)
	}
	return fmt.Sprintf(`global:
  scrape_interval: %[1]s
scrape_configs:
%[2]s  - job_name: file
    file_sd_configs:
      - files: [%[3]q]
`, promDuration(interval), self, filepath.Join(targetsDir, "*.json"))
}

func (c *Cluster) startPrometheus(port int) (*prometheusServer, error) {
	bin, err := findBinary(c.BinDir, "prometheus")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "prometheus")
	targetsDir := filepath.Join(dir, "targets")
	if err := os.MkdirAll(targetsDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", targetsDir, err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	config := scrapeConfig(c.opts.ScrapeInterval, listen, targetsDir)
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("writing prometheus config: %w", err)
	}
	proc, err := c.track(startProcess("prometheus", bin, c.logDir(),
		flag("config.file", configPath),
		flag("storage.tsdb.path", filepath.Join(dir, "data")),
		flag("web.listen-address", listen),
		// Backfilled history in tests is days old; keep it.
		flag("storage.tsdb.retention.time", "90d"),
		flag("log.level", "warn"),
	))
	if err != nil {
		return nil, err
	}
	return &prometheusServer{proc: proc, baseURL: "http://" + listen, targetsDir: targetsDir, c: c}, nil
}

func (p *prometheusServer) waitReady(ctx context.Context) error {
	return p.proc.waitFor(ctx, "/-/ready", time.Minute, func(ctx context.Context) error {
		_, err := httpGet(ctx, http.DefaultClient, p.baseURL+"/-/ready")
		return err
	})
}

var scrapeNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// ScrapeTarget is one endpoint the metrics backend scrapes over plain HTTP.
type ScrapeTarget struct {
	// Name identifies the target file; adding a target with the same name replaces it.
	Name string
	// Address is host:port.
	Address string
	// MetricsPath defaults to /metrics.
	MetricsPath string
	// Labels are attached to every series scraped from the target.
	Labels map[string]string
}

// AddScrapeTarget makes the metrics backend scrape target from now on. It notices the file within
// a second; callers that need samples poll the query API for them.
func (c *Cluster) AddScrapeTarget(target ScrapeTarget) error {
	if !scrapeNamePattern.MatchString(target.Name) {
		return fmt.Errorf("scrape target name %q: use lower-case letters, digits and dashes", target.Name)
	}
	labels := map[string]string{"job": target.Name}
	for k, v := range target.Labels {
		labels[k] = v
	}
	if target.MetricsPath != "" {
		labels["__metrics_path__"] = target.MetricsPath
	}
	data, err := json.Marshal([]map[string]any{{"targets": []string{target.Address}, "labels": labels}})
	if err != nil {
		return fmt.Errorf("encoding scrape target %s: %w", target.Name, err)
	}
	// Write then rename, so Prometheus never reads a half-written file.
	final := filepath.Join(c.metrics.targets(), target.Name+".json")
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing scrape target %s: %w", target.Name, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("installing scrape target %s: %w", target.Name, err)
	}
	return nil
}

// RemoveScrapeTarget stops scraping the named target.
func (c *Cluster) RemoveScrapeTarget(name string) error {
	err := os.Remove(filepath.Join(c.metrics.targets(), name+".json"))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing scrape target %s: %w", name, err)
	}
	return nil
}

// StopPrometheus stops the metrics backend, for tests of what clients do when it is gone.
func (c *Cluster) StopPrometheus() { c.metrics.stop() }

// promDuration renders a duration in Prometheus' configuration format.
func promDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

func parseQuantity(field, value string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(value)
	if err != nil {
		return q, fmt.Errorf("node %s capacity %q: %w", field, value, err)
	}
	return q, nil
}
