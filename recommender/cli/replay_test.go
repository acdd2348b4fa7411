package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/recommender/replay"
)

// TestReplayDefaultsFromTraceAlone runs `kapacity replay --trace` with nothing else (hourly points: the
// default job interval and scale-up lead must still fit the forecaster) and checks the three outputs.
func TestReplayDefaultsFromTraceAlone(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "traffic.csv")
	writeTraceCSV(t, trace, 24*12, "")
	cmd := NewReplayCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	chart, js := filepath.Join(dir, "r.png"), filepath.Join(dir, "r.json")
	cmd.SetArgs([]string{"--trace", trace, "--epochs", "3", "--chart", chart, "--json", js})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	for _, p := range replay.AllPolicies {
		if !strings.Contains(out.String(), p) {
			t.Errorf("table lacks policy %s:\n%s", p, out.String())
		}
	}
	var rep struct{ Policies []replay.PolicyResult }
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	if len(rep.Policies) != len(replay.AllPolicies) {
		t.Fatalf("JSON report has %d policies, want %d: %s", len(rep.Policies), len(replay.AllPolicies), b)
	}
	for _, p := range rep.Policies {
		if p.Error != "" || p.ReplicaHours <= 0 {
			t.Errorf("policy %s: error %q, %v replica-h", p.Name, p.Error, p.ReplicaHours)
		}
	}
	f, err := os.Open(chart)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
}

func TestReplayFlagErrors(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "traffic.csv")
	writeTraceCSV(t, trace, 48, "")
	tests := []struct {
		args []string
		want string
	}{
		{nil, "give the traffic: --trace"},
		{[]string{"--trace", trace, "--history-portrait", "a/b"}, "exclusive"},
		{[]string{"--trace", filepath.Join(dir, "missing.csv")}, "--trace"},
		{[]string{"--trace", trace, "--gray-state", "Offline"}, "--gray-state"},
		{[]string{"--trace", trace, "--pod-capacity", "-1"}, "--pod-capacity"},
		{[]string{"--trace", trace, "--extra-load", "cpu=2"}, "for is required"},
		{[]string{"--trace", trace, "--policies", "hpa,vpa"}, `unknown policy "vpa"`},
		{[]string{"--trace", trace, "--cpu-target", "2"}, "--cpu-target"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := runReplayArgs(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// runReplayArgs runs the command with args and no output.
func runReplayArgs(args []string) error {
	cmd := NewReplayCommand()
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return cmd.ExecuteContext(ctx)
}
