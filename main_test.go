package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantErr    string
		wantOutput string
	}{
		{name: "version", args: []string{"version"}, wantOutput: "kapacity dev (commit unknown, go"},
		{name: "help lists subcommands", args: []string{"--help"}, wantOutput: "demo "},
		{name: "help groups the components apart from the tools", args: []string{"--help"},
			wantOutput: "Components (what a cluster runs):\n  adapter"},
		{name: "the demo is a try-it-out command", args: []string{"--help"}, wantOutput: "Trying it out:\n  demo"},
		{name: "the console is a tool", args: []string{"--help"}, wantOutput: "console "},
		{name: "version flag", args: []string{"--version"}, wantOutput: "kapacity dev (commit unknown, go"},
		{name: "verbosity flag", args: []string{"-v=2", "version"}, wantOutput: "kapacity dev"},
		// prometheus-adapter's logging flags, on every component.
		{name: "logging flags", args: []string{"--v=6", "--vmodule=server=4", "--log-flush-frequency=5s", "--logging-format=json", "version"}, wantOutput: "kapacity dev"},
		{name: "adapter help lists the logging flags last", args: []string{"adapter", "--help"},
			wantOutput: "Logging and global flags:\n\n      --log-flush-frequency duration"},
		{name: "manager help lists the logging flags", args: []string{"manager", "--help"}, wantOutput: "--logging-format string"},
		{name: "unknown subcommand", args: []string{"bogus"}, wantErr: `unknown command "bogus" for "kapacity"`},
		{name: "unknown flag", args: []string{"version", "--bogus"}, wantErr: "unknown flag: --bogus"},
		{name: "version takes no arguments", args: []string{"version", "extra"}, wantErr: `unknown command "extra" for "kapacity version"`},
		{name: "demo rejects zero nodes", args: []string{"demo", "--nodes=0", "--tools-bin=/nonexistent"}, wantErr: "--nodes must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := newRootCommand(func(*logsapi.LoggingConfiguration) error { return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			err := cmd.Execute()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v (output %q)", err, out.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOutput) {
				t.Fatalf("output %q does not contain %q", out.String(), tt.wantOutput)
			}
		})
	}
}

// TestLoggingFormatJSON: --logging-format=json makes every component log one JSON object per line
// (component-base's format, as the Kubernetes components and prometheus-adapter do).
func TestLoggingFormatJSON(t *testing.T) {
	var logged bytes.Buffer
	apply := func(c *logsapi.LoggingConfiguration) error {
		return logsapi.ValidateAndApplyWithOptions(c, &logsapi.LoggingOptions{ErrorStream: &logged, InfoStream: &logged}, nil)
	}
	t.Cleanup(func() {
		if err := logsapi.ResetForTest(nil); err != nil {
			t.Error(err)
		}
	})
	cmd := newRootCommand(apply)
	cmd.SetArgs([]string{"--logging-format=json", "-v=2", "version"})
	cmd.SetOut(&bytes.Buffer{})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	klog.V(2).InfoS("Probe", "component", "test")
	klog.V(3).InfoS("Too verbose")
	klog.Flush()
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("logged %q, want the one line at -v=2", logged.String())
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("%q is not JSON: %v", lines[0], err)
	}
	if entry["msg"] != "Probe" || entry["component"] != "test" || entry["v"] != float64(2) {
		t.Errorf("logged %v, want msg Probe, component test, v 2", entry)
	}
}
