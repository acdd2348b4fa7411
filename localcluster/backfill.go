package localcluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Backfill writes history into the running metrics backend: openMetrics is OpenMetrics text with
// timestamps, ending in "# EOF". The samples may take a minute to become visible; callers poll a
// query for them.
func (c *Cluster) Backfill(ctx context.Context, openMetrics io.Reader) error {
	return c.metrics.backfill(ctx, openMetrics)
}

// backfill turns the samples into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`
// and moves the blocks into Prometheus' data directory. Prometheus loads new blocks on its next
// block reload, within about a minute. Blocks may overlap live data (Prometheus >= 2.39 merges them).
func (p *prometheusServer) backfill(ctx context.Context, openMetrics io.Reader) error {
	c := p.c
	promtool, err := findBinary(c.BinDir, "promtool")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(filepath.Join(c.Dir, "prometheus"), "backfill-")
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	defer os.RemoveAll(work)
	input := filepath.Join(work, "input.om")
	f, err := os.Create(input)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	if _, err := io.Copy(f, openMetrics); err != nil {
		_ = f.Close()
		return fmt.Errorf("backfill: writing the input: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	blocks := filepath.Join(work, "blocks")
	began := time.Now()
	out, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", input, blocks).CombinedOutput()
	if err != nil {
		return fmt.Errorf("backfill: promtool: %w: %s", err, out)
	}
	entries, err := os.ReadDir(blocks)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	data := filepath.Join(c.Dir, "prometheus", "data")
	moved := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		// Same file system: the rename is atomic, so Prometheus never sees half a block.
		if err := os.Rename(filepath.Join(blocks, e.Name()), filepath.Join(data, e.Name())); err != nil {
			return fmt.Errorf("backfill: installing block %s: %w", e.Name(), err)
		}
		moved++
	}
	c.opts.Logf("backfilled %d blocks in %s", moved, time.Since(began).Round(time.Millisecond))
	return nil
}
