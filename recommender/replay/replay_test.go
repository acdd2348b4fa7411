package replay

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday, 00:00 UTC

// squareTrace alternates low and high every period for n steps of step.
func squareTrace(step, period time.Duration, n int, low, high float64) Trace {
	tr := Trace{Name: "square", Start: epoch, Step: step, Values: make([]float64, n)}
	for i := range tr.Values {
		tr.Values[i] = low
		if (time.Duration(i)*step/period)%2 == 1 {
			tr.Values[i] = high
		}
	}
	return tr
}

func TestOracleIsExactOnSquareWave(t *testing.T) {
	const low, high = 10.0, 100.0
	w := Workload{PodCapacity: 10, CPUTarget: 0.5, StartupDelay: time.Minute, MinReplicas: 1, MaxReplicas: 50}
	tr := squareTrace(5*time.Minute, time.Hour, 24*12*2, low, high) // two days of 1-hour halves
	cfg := DefaultConfig(tr.Step, w, 1)
	cfg.Policies = []string{PolicyHPA}
	rep, err := Run(context.Background(), tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// By definition: at each 15 s tick the oracle holds the pods the next start-up delay needs.
	dt := cfg.HPA.SyncPeriod
	lead := int(w.StartupDelay / dt)
	start := tr.TimeAt(len(tr.Values) / 2)
	ticks := int(tr.End().Sub(start) / dt)
	need := func(k int) int { return w.Required(tr.At(start.Add(time.Duration(k)*dt)) / w.PodCapacity) }
	wantSec := 0.0
	for k := range ticks {
		n := 0
		for j := k; j <= k+lead && j < ticks; j++ {
			n = max(n, need(j))
		}
		wantSec += float64(n) * dt.Seconds()
	}
	o := rep.Policy(PolicyOracle)
	if math.Abs(o.ReplicaHours-wantSec/3600) > 1e-9 {
		t.Errorf("oracle replica-hours %v, want %v", o.ReplicaHours, wantSec/3600)
	}
	if o.MinutesOverTarget != 0 || o.MinutesOver100 != 0 {
		t.Errorf("oracle violated the target: %v min over target, %v over 100%%", o.MinutesOverTarget, o.MinutesOver100)
	}
	if wantPeak := w.Required(high / w.PodCapacity); o.PeakReplicas != wantPeak {
		t.Errorf("oracle peak %d, want %d", o.PeakReplicas, wantPeak)
	}
	// The native HPA reacts after the fact, so it must be over target at every rise and cost no less.
	h := rep.Policy(PolicyHPA)
	if h.MinutesOverTarget <= 0 || h.ReplicaHours < o.ReplicaHours {
		t.Errorf("hpa: %v min over target, %v replica-h (oracle %v); want violations and no less cost", h.MinutesOverTarget, h.ReplicaHours, o.ReplicaHours)
	}
}

// runHPA replays the HPA alone over per-tick demand and returns its pods per tick.
func runHPA(t *testing.T, w Workload, cfg HPAConfig, demandAt func(k int) float64, ticks int) []int {
	t.Helper()
	d := &demand{start: epoch, dt: cfg.SyncPeriod, values: make([]float64, ticks), prefix: make([]float64, ticks+1),
		bucketOf: func(k int) int { return k }}
	for k := range d.values {
		d.values[k] = demandAt(k)
		d.prefix[k+1] = d.prefix[k] + d.values[k]
	}
	pods := make([]int, ticks)
	c := Config{Workload: w, HPA: cfg}
	if _, _, err := simulateWith(context.Background(), d, hpaAdapter{newHPAPolicy(w, cfg)}, c, nil,
		func(k int, st state) { pods[k] = st.total }); err != nil {
		t.Fatal(err)
	}
	return pods
}

func TestHPAScaleDownWaitsForStabilizationWindow(t *testing.T) {
	w := Workload{PodCapacity: 1, CPUTarget: 0.5, StartupDelay: 0, MinReplicas: 1, MaxReplicas: 100}
	cfg := DefaultHPAConfig()
	dropAt := 40 // ticks of 15 s: 10 minutes at 5 pods' worth (10 replicas), then 1 pod's worth (2 replicas)
	pods := runHPA(t, w, cfg, func(k int) float64 {
		if k < dropAt {
			return 5
		}
		return 1
	}, 120)
	if pods[dropAt-1] != 10 {
		t.Fatalf("before the drop: %d pods, want 10 (pods per tick: %v)", pods[dropAt-1], pods)
	}
	// The last high recommendation is made at the drop (the metric still shows the old load); the HPA
	// must hold 10 pods until it is 5 minutes old, then follow the falling metric down to 2.
	window := int(cfg.ScaleDownStabilization / cfg.SyncPeriod)
	for k := dropAt; k < dropAt+window; k++ {
		if pods[k] != 10 {
			t.Fatalf("tick %d (%v after the drop): %d pods; the HPA must hold 10 for the 5-min stabilization window (pods: %v)",
				k, time.Duration(k-dropAt)*cfg.SyncPeriod, pods[k], pods)
		}
	}
	if pods[dropAt+window] >= 10 {
		t.Fatalf("5 min after the drop: %d pods; the HPA must start scaling down (pods: %v)", pods[dropAt+window], pods)
	}
	settled := dropAt + window + int(cfg.MetricWindow/cfg.SyncPeriod)
	if pods[settled] != 2 {
		t.Fatalf("tick %d (%v after the drop): %d pods, want 2 once the metric window has passed too (pods: %v)",
			settled, time.Duration(settled-dropAt)*cfg.SyncPeriod, pods[settled], pods)
	}
}

func TestHPAScaleUpRateLimit(t *testing.T) {
	w := Workload{PodCapacity: 1, CPUTarget: 0.5, StartupDelay: 0, MinReplicas: 1, MaxReplicas: 100}
	cfg := DefaultHPAConfig()
	cfg.MetricWindow = cfg.SyncPeriod
	pods := runHPA(t, w, cfg, func(k int) float64 {
		if k == 0 {
			return 0.5
		}
		return 30 // needs 60 pods
	}, 8)
	// The HPA sees the rise one sync later (its metric is the last window's mean); then, per 15 s, the
	// larger of +100 % and +4 pods.
	want := []int{1, 1, 5, 10, 20, 40, 60, 60}
	if !reflect.DeepEqual(pods, want) {
		t.Fatalf("pods per tick %v, want %v", pods, want)
	}
}

func TestHPAReplicaCalculator(t *testing.T) {
	tests := []struct {
		name          string
		current       int
		ready, start  int
		usage, target float64
		want          int
		ok            bool
	}{
		{"within +10% tolerance keeps", 10, 10, 0, 10 * 0.5 * 1.09, 0.5, 10, true},
		{"within -10% tolerance keeps", 10, 10, 0, 10 * 0.5 * 0.91, 0.5, 10, true},
		{"above tolerance scales up", 10, 10, 0, 10 * 0.5 * 1.11, 0.5, 12, true},
		{"below tolerance scales down", 10, 10, 0, 10 * 0.5 * 0.8, 0.5, 8, true},
		{"starting pods count idle on scale-up", 10, 5, 5, 5 * 0.5 * 2, 0.5, 10, true},
		{"starting pods idle, still above", 8, 4, 4, 4 * 0.5 * 3, 0.5, 12, true},
		{"starting pods ignored on scale-down", 8, 4, 4, 4 * 0.5 * 0.5, 0.5, 2, true},
		{"no ready pod keeps and reports no metrics", 3, 0, 3, 1, 0.5, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := observation{state: state{total: tc.ready + tc.start, ready: tc.ready, serving: tc.ready, starting: tc.start}, usage: tc.usage}
			got, ok := hpaReplicas(tc.current, o, tc.target, 0.1)
			if got != tc.want || ok != tc.ok {
				t.Errorf("hpaReplicas = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// dailyTrace is a smooth daily cycle between low and high, at 5-minute steps.
func dailyTrace(days int, low, high float64) Trace {
	step := 5 * time.Minute
	tr := Trace{Name: "daily", Start: epoch, Step: step, Values: make([]float64, days*288)}
	for i := range tr.Values {
		phase := 2 * math.Pi * float64(i%288) / 288
		tr.Values[i] = low + (high-low)*(0.5-0.5*math.Cos(phase))
	}
	return tr
}

func TestPredictiveRunIsDeterministicAndAheadOfTheHPA(t *testing.T) {
	tr := dailyTrace(8, 100, 1000)
	w := Workload{PodCapacity: 50, CPUTarget: 0.6, StartupDelay: 2 * time.Minute, MinReplicas: 1, MaxReplicas: 100}
	cfg := DefaultConfig(tr.Step, w, 7)
	cfg.Predictive.Forecast.Epochs, cfg.Predictive.Forecast.SamplesPerEpoch = 8, 512
	cfg.Predictive.Estimator.TestSize = 12 * time.Hour
	run := func() *Report {
		rep, err := Run(context.Background(), tr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a.Policies, b.Policies) {
		t.Fatalf("same seed, different reports:\n%+v\n%+v", a.Policies, b.Policies)
	}
	for _, p := range a.Policies {
		if p.Error != "" {
			t.Fatalf("%s: %s", p.Name, p.Error)
		}
	}
	hpa, pr := a.Policy(PolicyHPA), a.Policy(PolicyPredictiveReactive)
	if !(pr.MinutesOverTarget < hpa.MinutesOverTarget) {
		t.Errorf("on a smooth daily cycle predictive+reactive should be over target less than the HPA: %v vs %v min",
			pr.MinutesOverTarget, hpa.MinutesOverTarget)
	}
	if a.JobRuns == 0 || a.FailedJobRuns != 0 {
		t.Errorf("job runs %d, failed %d; want runs and no failure", a.JobRuns, a.FailedJobRuns)
	}
	var sb strings.Builder
	if err := a.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	for _, name := range AllPolicies {
		if !strings.Contains(sb.String(), name) {
			t.Errorf("table lacks %s:\n%s", name, sb.String())
		}
	}
}

func TestInvalidInputNamesTheField(t *testing.T) {
	good := Workload{PodCapacity: 1, CPUTarget: 0.5, MinReplicas: 1, MaxReplicas: 3}
	tr := dailyTrace(1, 1, 2)
	tests := []struct {
		name   string
		mutate func(*Config, *Trace)
		want   string
	}{
		{"capacity", func(c *Config, _ *Trace) { c.Workload.PodCapacity = 0 }, "pod capacity"},
		{"target", func(c *Config, _ *Trace) { c.Workload.CPUTarget = 1.5 }, "CPU target"},
		{"max below min", func(c *Config, _ *Trace) { c.Workload.MaxReplicas = 0 }, "max replicas (0) must be at least min"},
		{"unknown policy", func(c *Config, _ *Trace) { c.Policies = []string{"vpa"} }, `unknown policy "vpa"`},
		{"negative traffic", func(_ *Config, tr *Trace) { tr.Values[3] = -1 }, "value 3"},
		{"scaling freq", func(c *Config, _ *Trace) { c.Predictive.ScalingFreq = time.Minute }, "scaling frequency"},
		{"horizon", func(c *Config, _ *Trace) { c.Predictive.JobInterval = 2 * time.Hour }, "forecast horizon"},
		{"quantile", func(c *Config, _ *Trace) { c.Predictive.ForecastQuantile = 1 }, "forecast quantile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig(tr.Step, good, 1)
			trc := tr
			trc.Values = append([]float64(nil), tr.Values...)
			tc.mutate(&cfg, &trc)
			_, err := Run(context.Background(), trc, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestExtraLoad(t *testing.T) {
	e, err := ParseExtraLoad("start=02:00,for=1h,cpu=4")
	if err != nil {
		t.Fatal(err)
	}
	w := Workload{PodCapacity: 10, Extra: []ExtraLoad{e}}
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{{time.Hour + 59*time.Minute, 1}, {2 * time.Hour, 5}, {2*time.Hour + 59*time.Minute, 5}, {3 * time.Hour, 1}} {
		if got := w.Demand(day.Add(tc.at), 10); got != tc.want {
			t.Errorf("demand at %v = %v, want %v", tc.at, got, tc.want)
		}
	}
	for _, bad := range []struct{ in, want string }{
		{"for=1h", "cpu is required"},
		{"cpu=1,for=2d", "for:"},
		{"cpu=1,for=25h", "for must be in"},
		{"cpu=1,for=1h,size=3", "unknown key"},
		{"cpu", "not key=value"},
	} {
		if _, err := ParseExtraLoad(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseExtraLoad(%q) = %v, want an error mentioning %q", bad.in, err, bad.want)
		}
	}
}
