package main

import (
	"bytes"
	"strings"
	"testing"
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
		{name: "unknown subcommand", args: []string{"bogus"}, wantErr: `unknown command "bogus" for "kapacity"`},
		{name: "unknown flag", args: []string{"version", "--bogus"}, wantErr: "unknown flag: --bogus"},
		{name: "version takes no arguments", args: []string{"version", "extra"}, wantErr: `unknown command "extra" for "kapacity version"`},
		{name: "demo rejects zero nodes", args: []string{"demo", "--nodes=0", "--tools-bin=/nonexistent"}, wantErr: "--nodes must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := newRootCommand()
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
