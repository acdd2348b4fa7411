package localcluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// victoriaMetrics is the bed's single-node VictoriaMetrics, scraping the same file-discovered
// targets Prometheus would.
type victoriaMetrics struct {
	proc       *process
	baseURL    string
	targetsDir string
}

func (v *victoriaMetrics) url() string     { return v.baseURL }
func (v *victoriaMetrics) targets() string { return v.targetsDir }
func (v *victoriaMetrics) stop()           { v.proc.stop(10 * time.Second) }

func (c *Cluster) startVictoriaMetrics(port int) (*victoriaMetrics, error) {
	bin, err := findBinary(c.BinDir, "victoria-metrics")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "prometheus")
	targetsDir := filepath.Join(dir, "targets")
	if err := os.MkdirAll(targetsDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", targetsDir, err)
	}
	configPath := filepath.Join(dir, "scrape.yml")
	if err := os.WriteFile(configPath, []byte(scrapeConfig(c.opts.ScrapeInterval, "", targetsDir)), 0o600); err != nil {
		return nil, fmt.Errorf("writing the scrape config: %w", err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	proc, err := c.track(startProcess("victoria-metrics", bin, c.logDir(),
		flag("httpListenAddr", listen),
		flag("storageDataPath", filepath.Join(dir, "data")),
		// Backfilled history in tests is days old; keep it.
		flag("retentionPeriod", "90d"),
		flag("promscrape.config", configPath),
		// The default (1m) would make a new target wait a minute for its first scrape.
		flag("promscrape.fileSDCheckInterval", "1s"),
		// By default the newest 30s are hidden from queries so that late samples of a
		// scrape land before anyone reads; an HPA would then act on 30s-old data. One scrape
		// interval is enough on loopback.
		flag("search.latencyOffset", promDuration(c.opts.ScrapeInterval)),
		// Backfilled samples land behind cached range results; without the cache every query
		// sees them at once.
		flag("search.disableCache", "true"),
		flag("loggerLevel", "WARN"),
	))
	if err != nil {
		return nil, err
	}
	return &victoriaMetrics{proc: proc, baseURL: "http://" + listen, targetsDir: targetsDir}, nil
}

func (v *victoriaMetrics) waitReady(ctx context.Context) error {
	return v.proc.waitFor(ctx, "/health", time.Minute, func(ctx context.Context) error {
		_, err := httpGet(ctx, http.DefaultClient, v.baseURL+"/health")
		return err
	})
}

// backfill posts the samples to /api/v1/import/prometheus, which takes Prometheus' text format
// with millisecond timestamps (OpenMetrics has seconds), then flushes them to be searchable.
func (v *victoriaMetrics) backfill(ctx context.Context, openMetrics io.Reader) error {
	body, w := io.Pipe()
	go func() { w.CloseWithError(toPrometheusText(openMetrics, w)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.baseURL+"/api/v1/import/prometheus", body)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("backfill: importing into VictoriaMetrics: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("backfill: VictoriaMetrics answered %s: %s", resp.Status, msg)
	}
	if _, err := httpGet(ctx, http.DefaultClient, v.baseURL+"/internal/force_flush"); err != nil {
		return fmt.Errorf("backfill: flushing: %w", err)
	}
	return nil
}

// toPrometheusText copies the sample lines of OpenMetrics text, turning each timestamp from
// seconds into milliseconds; comments and # EOF are dropped.
func toPrometheusText(in io.Reader, out io.Writer) error {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64*1024), 1<<20)
	bw := bufio.NewWriter(out)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return fmt.Errorf("backfill: sample line without a value: %q", line)
		}
		seconds, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil || !strings.Contains(line[:i], " ") {
			return fmt.Errorf("backfill: sample line without a timestamp: %q", line)
		}
		if _, err := fmt.Fprintf(bw, "%s %d\n", line[:i], int64(seconds*1000)); err != nil {
			return err
		}
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	return bw.Flush()
}
