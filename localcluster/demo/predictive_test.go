package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/localcluster/sim"
)

func TestIndented(t *testing.T) {
	var out bytes.Buffer
	w := &indented{w: &out, prefix: "  "}
	for _, s := range []string{"one\ntw", "o\n", "", "three\nfour\n"} {
		if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if want := "  one\n  two\n  three\n  four\n"; out.String() != want {
		t.Errorf("wrote %q, want %q", out.String(), want)
	}
}

// TestPredictiveInstructions checks the printed commands name the sample's objects.
func TestPredictiveInstructions(t *testing.T) {
	p := &predictive{ihpa: "predictive-sample", portrait: "predictive-sample-predictive", cronJob: "predictive-sample-predictive-0123456789",
		traffic: sim.Traffic{Low: 20, High: 50, Rise: time.Now().Truncate(time.Minute), Period: predictivePeriod, Busy: predictiveBusy},
		changes: []string{"--scaling-freq=10min → --scaling-freq=2min"}}
	got := p.instructions()
	for _, want := range []string{
		"kubectl get ihpa,hp -n demo -w",
		"kubectl get statefulset -n demo nginx -w",
		"kubectl get hp -n demo predictive-sample-predictive -o jsonpath=",
		"kubectl get configmap -n demo predictive-sample-predictive-result -o yaml",
		"kubectl get jobs -n demo -l app.kubernetes.io/component=kapacity-algorithm-job",
		"rises from about 20 to 50 requests/s for 5 minutes every\n10 minutes (next at",
		"CronJob demo/predictive-sample-predictive-0123456789",
		"--scaling-freq=10min → --scaling-freq=2min",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("instructions lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "%!") {
		t.Errorf("formatting error in the instructions:\n%s", got)
	}
}
