package server

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestHistoryFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" means valid
	}{
		{nil, ""},
		{[]string{"--grpc-port=9090", "--history-max-range=720h", "--history-max-points=50000"}, ""},
		{[]string{"--history-max-points=0"}, "--history-max-points must be positive"},
		{[]string{"--history-shard-concurrency=0"}, "--history-shard-concurrency must be positive"},
		{[]string{"--history-max-range=-1h"}, "--history-max-range must not be negative"},
		{[]string{"--grpc-port=70000"}, "--grpc-port must be 0..65535"},
		{[]string{"--grpc-tls-cert-file=c"}, "go together"},
		{[]string{"--grpc-tls-client-ca-file=ca"}, "needs --grpc-tls-cert-file"},
	}
	for _, tc := range tests {
		var o HistoryOptions
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		o.AddFlags(fs)
		o.AddGRPCFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, err := range o.Validate() {
			msgs = append(msgs, err.Error())
		}
		got := strings.Join(msgs, "; ")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%v: errors %q, want %q", tc.args, got, tc.want)
		}
	}
}
