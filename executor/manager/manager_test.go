package manager

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kapacitystack/kapacity/config/portraitresult"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"--reconcile-concurrency=0"}, "--reconcile-concurrency"},
		{[]string{"--kube-api-qps=0"}, "--kube-api-qps"},
		{[]string{"--kube-api-burst=0"}, "--kube-api-burst"},
		{[]string{"--kube-api-qps=200", "--kube-api-burst=400"}, ""},
		{[]string{"--leader-elect", "--leader-election-id="}, "--leader-election-id"},
		{[]string{"--webhook-cert-mode=acme"}, "--webhook-cert-mode"},
		{[]string{"--webhook-port=0", "--webhook-cert-mode=acme"}, ""},
		{[]string{"--standby-cpu-fraction=1.5"}, "--standby-cpu-fraction"},
		{[]string{"--standby-cpu-fraction=-0.1"}, "--standby-cpu-fraction"},
		{[]string{"--standby-min-cpu=-5m"}, "--standby-min-cpu"},
		{[]string{"--standby-cpu-fraction=0.25", "--standby-min-cpu=50m"}, ""},
		{[]string{"--standby-cpu-fraction=1"}, ""},
		{[]string{"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "--webhook-cert-ips=127.0.0.1"}, ""},
		{[]string{"--algorithm-job-default-service-account="}, "--algorithm-job-default-service-account"},
		{[]string{"--algorithm-job-default-service-account=Job_Runner"}, "--algorithm-job-default-service-account"},
		{[]string{"--algorithm-job-default-service-account=my-jobs"}, ""},
		{[]string{"--algorithm-job-namespace=legacy"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
			o := NewOptions()
			o.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if tt.wantErr == "" && err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want one mentioning %s", err, tt.wantErr)
			}
		})
	}
	if NewCommand().Flags().Lookup("webhook-cert-dir") == nil {
		t.Error("the command lacks --webhook-cert-dir")
	}
	if _, err := Scheme(); err != nil {
		t.Fatal(err)
	}
	// /metrics is authenticated and authorized unless turned off.
	o := NewOptions()
	if m := o.metricsOptions(); !m.SecureServing || m.FilterProvider == nil {
		t.Errorf("default metrics options %+v: want HTTPS with authentication and authorization", m)
	}
	o.MetricsSecure = false
	if m := o.metricsOptions(); m.SecureServing || m.FilterProvider != nil {
		t.Errorf("--metrics-secure=false: %+v", m)
	}
}

// TestResultCacheSelector: the manager's ConfigMap cache holds results labelled by the recommender
// and no other ConfigMap.
func TestResultCacheSelector(t *testing.T) {
	sel := resultSelector()
	for _, tt := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{portraitresult.LabelKey: portraitresult.LabelValue}, true},
		{map[string]string{"app": "web"}, false},
		{nil, false},
	} {
		if got := sel.Matches(labels.Set(tt.labels)); got != tt.want {
			t.Errorf("labels %v: cached %t, want %t", tt.labels, got, tt.want)
		}
	}
}
