package stack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

func quickStartSample(t *testing.T) *v1alpha1.IntelligentHorizontalPodAutoscaler {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "quickstart", "dynamic-predictive-portrait-sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ihpa := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
	if err := yaml.UnmarshalStrict(raw, ihpa); err != nil {
		t.Fatal(err)
	}
	return ihpa
}

// TestTunePredictiveSample checks that only the sample's timing changes, and says how.
func TestTunePredictiveSample(t *testing.T) {
	for _, c := range []struct {
		name        string
		timing      SampleTiming
		wantArgs    []string
		wantSched   string
		wantChanges []string
	}{
		{"nothing", SampleTiming{}, []string{"--tsf-model-path=/opt/kapacity/timeseries/forecasting/model", "--re-history-len=24H",
			"--re-time-delta-hours=8", "--re-test-dataset-size-in-seconds=3600", "--scaling-freq=10min"}, "0/30 * * * *", nil},
		{"the demo's", SampleTiming{ScalingFreq: 2 * time.Minute, ScaleUpAhead: 2 * time.Minute, Schedule: "*/5 * * * *"},
			[]string{"--tsf-model-path=/opt/kapacity/timeseries/forecasting/model", "--re-history-len=24H", "--re-time-delta-hours=8",
				"--re-test-dataset-size-in-seconds=3600", "--scaling-freq=2min", "--scale-up-ahead-seconds=120"}, "*/5 * * * *",
			[]string{"--scaling-freq=10min → --scaling-freq=2min", "added --scale-up-ahead-seconds=120", `schedule "0/30 * * * *" → "*/5 * * * *"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ihpa := quickStartSample(t)
			want := quickStartSample(t)
			changes, err := TunePredictiveSample(ihpa, c.timing)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(changes, c.wantChanges) {
				t.Errorf("changes = %q, want %q", changes, c.wantChanges)
			}
			cj := ihpa.Spec.PortraitProviders[0].Dynamic.Algorithm.ExternalJob.Job.CronJob
			container, err := AlgorithmContainer(&cj.Template.Spec.JobTemplate.Spec.Template.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(container.Args, c.wantArgs) || cj.Template.Spec.Schedule != c.wantSched {
				t.Errorf("args %q, schedule %q; want %q, %q", container.Args, cj.Template.Spec.Schedule, c.wantArgs, c.wantSched)
			}
			// Everything else is the sample's.
			container.Args = nil
			cj.Template.Spec.Schedule = ""
			wantCJ := want.Spec.PortraitProviders[0].Dynamic.Algorithm.ExternalJob.Job.CronJob
			wantCJ.Template.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args = nil
			wantCJ.Template.Spec.Schedule = ""
			a, _ := yaml.Marshal(ihpa)
			b, _ := yaml.Marshal(want)
			if string(a) != string(b) {
				t.Errorf("the sample changed beyond its timing:\n%s\nwant\n%s", a, b)
			}
		})
	}
	notPredictive := quickStartSample(t)
	notPredictive.Spec.PortraitProviders[0].Dynamic = nil
	if _, err := TunePredictiveSample(notPredictive, SampleTiming{}); err == nil || !strings.Contains(err.Error(), "not the predictive sample") {
		t.Errorf("a sample without the Dynamic provider gave %v", err)
	}
}
