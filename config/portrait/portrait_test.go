package portrait

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func mtime(t *testing.T, s string) *metav1.Time {
	mt := metav1.NewTime(mustTime(t, s))
	return &mt
}

func value(provider string, replicas int32, expire *metav1.Time) *v1alpha1.HorizontalPortraitValue {
	return &v1alpha1.HorizontalPortraitValue{Provider: provider, Replicas: replicas, ExpireTime: expire}
}

// checkEvaluation compares the value (nil or provider, replicas, expiry instant) and NextChange.
func checkEvaluation(t *testing.T, got Evaluation, want *v1alpha1.HorizontalPortraitValue, wantNext string) {
	t.Helper()
	switch {
	case want == nil && got.Value != nil:
		t.Errorf("value = %+v, want none (reason %q)", *got.Value, got.Reason)
	case want != nil && got.Value == nil:
		t.Errorf("no value (reason %q), want %+v", got.Reason, *want)
	case want != nil:
		if got.Value.Provider != want.Provider || got.Value.Replicas != want.Replicas {
			t.Errorf("value = %s/%d, want %s/%d", got.Value.Provider, got.Value.Replicas, want.Provider, want.Replicas)
		}
		if !expireTime(got.Value).Equal(expireTime(want)) {
			t.Errorf("expireTime = %v, want %v", expireTime(got.Value), expireTime(want))
		}
	}
	var next time.Time
	if wantNext != "" {
		next = mustTime(t, wantNext)
	}
	if !got.NextChange.Equal(next) {
		t.Errorf("NextChange = %v, want %v", got.NextChange, next)
	}
}

func TestProviderID(t *testing.T) {
	tests := []struct {
		name     string
		provider v1alpha1.HorizontalPortraitProvider
		want     string
		wantErr  bool
	}{
		{"static", v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.StaticHorizontalPortraitProviderType}, "Static", false},
		{"cron", v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.CronHorizontalPortraitProviderType}, "Cron", false},
		{"dynamic", v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.DynamicHorizontalPortraitProviderType,
			Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{PortraitType: "Predictive"}}}, "Dynamic-Predictive", false},
		{"dynamic without block", v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.DynamicHorizontalPortraitProviderType}, "", true},
		{"unknown", v1alpha1.HorizontalPortraitProvider{Type: "Magic"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProviderID(&tt.provider)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ProviderID = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDynamicPortraitType(t *testing.T) {
	tests := []struct {
		id     string
		want   v1alpha1.PortraitType
		wantOK bool
	}{
		{"Dynamic-Predictive", "Predictive", true},
		// Kapacity's strings.Split(id, "-")[1] gave "my" here.
		{"Dynamic-my-generator", "my-generator", true},
		{"Dynamic-", "", false},
		{"Static", "", false},
	}
	for _, tt := range tests {
		got, ok := DynamicPortraitType(tt.id)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("DynamicPortraitType(%q) = %q, %v; want %q, %v", tt.id, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestEvaluateStatic(t *testing.T) {
	for _, replicas := range []int32{0, 1, 7} {
		ev := EvaluateStatic(&v1alpha1.StaticHorizontalPortraitProvider{Replicas: replicas})
		checkEvaluation(t, ev, value(StaticProviderID, replicas, nil), "")
	}
}

// The quick-start's cron: 5 replicas from minute 0 to minute 10 of every hour.
var quickStartCron = v1alpha1.ReplicaCron{Name: "cron-1", TimeZone: "UTC", Start: "0 * * * *", End: "10 * * * *", Replicas: 5}

func TestEvaluateCron(t *testing.T) {
	nightShanghai := v1alpha1.ReplicaCron{Name: "night", TimeZone: "Asia/Shanghai", Start: "0 22 * * *", End: "0 6 * * *", Replicas: 2}
	tests := []struct {
		name     string
		crons    []v1alpha1.ReplicaCron
		now      string
		want     *v1alpha1.HorizontalPortraitValue
		wantNext string
		wantErr  string
	}{
		{"inside the window", []v1alpha1.ReplicaCron{quickStartCron}, "2024-05-01T12:05:00Z",
			value("Cron", 5, mtime(t, "2024-05-01T12:10:00Z")), "2024-05-01T12:10:00Z", ""},
		{"at the start instant the window is open", []v1alpha1.ReplicaCron{quickStartCron}, "2024-05-01T12:00:00Z",
			value("Cron", 5, mtime(t, "2024-05-01T12:10:00Z")), "2024-05-01T12:10:00Z", ""},
		{"at the end instant the window is closed", []v1alpha1.ReplicaCron{quickStartCron}, "2024-05-01T12:10:00Z",
			nil, "2024-05-01T13:00:00Z", ""},
		{"outside the window", []v1alpha1.ReplicaCron{quickStartCron}, "2024-05-01T12:30:00Z",
			nil, "2024-05-01T13:00:00Z", ""},
		{"window wrapping midnight in its time zone", []v1alpha1.ReplicaCron{nightShanghai}, "2024-05-01T15:00:00Z", // 23:00 CST
			value("Cron", 2, mtime(t, "2024-05-01T22:00:00Z")), "2024-05-01T22:00:00Z", ""},
		{"after the wrapped window closed", []v1alpha1.ReplicaCron{nightShanghai}, "2024-05-01T00:00:00Z", // 08:00 CST
			nil, "2024-05-01T14:00:00Z", ""},
		{"CRON_TZ prefix overrides the time zone", []v1alpha1.ReplicaCron{{Name: "tz", TimeZone: "UTC",
			Start: "CRON_TZ=Asia/Shanghai 0 9 * * *", End: "CRON_TZ=Asia/Shanghai 0 10 * * *", Replicas: 3}}, "2024-05-01T01:30:00Z",
			value("Cron", 3, mtime(t, "2024-05-01T02:00:00Z")), "2024-05-01T02:00:00Z", ""},
		{"next change is the earliest event of all crons", []v1alpha1.ReplicaCron{
			quickStartCron, {Name: "b", TimeZone: "UTC", Start: "20 * * * *", End: "30 * * * *", Replicas: 8}}, "2024-05-01T12:15:00Z",
			nil, "2024-05-01T12:20:00Z", ""},
		{"overlap: more replicas win", []v1alpha1.ReplicaCron{
			quickStartCron, {Name: "big", TimeZone: "UTC", Start: "5 * * * *", End: "20 * * * *", Replicas: 9}}, "2024-05-01T12:07:00Z",
			value("Cron", 9, mtime(t, "2024-05-01T12:20:00Z")), "2024-05-01T12:10:00Z", ""},
		{"overlap: equal replicas, earlier rule wins", []v1alpha1.ReplicaCron{
			quickStartCron, {Name: "same", TimeZone: "UTC", Start: "5 * * * *", End: "20 * * * *", Replicas: 5}}, "2024-05-01T12:07:00Z",
			value("Cron", 5, mtime(t, "2024-05-01T12:10:00Z")), "2024-05-01T12:10:00Z", ""},
		{"empty time zone means UTC", []v1alpha1.ReplicaCron{{Name: "x", Start: "0 * * * *", End: "10 * * * *", Replicas: 1}}, "2024-05-01T12:05:00Z",
			value("Cron", 1, mtime(t, "2024-05-01T12:10:00Z")), "2024-05-01T12:10:00Z", ""},
		{"bad time zone", []v1alpha1.ReplicaCron{{Name: "x", TimeZone: "Mars/Olympus", Start: "0 * * * *", End: "10 * * * *"}}, "2024-05-01T12:05:00Z",
			nil, "", `cron "x": time zone "Mars/Olympus"`},
		{"bad expression", []v1alpha1.ReplicaCron{{Name: "x", Start: "61 * * * *", End: "10 * * * *"}}, "2024-05-01T12:05:00Z",
			nil, "", `cron "x": start "61 * * * *"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := EvaluateCron(CronProviderID, tt.crons, mustTime(t, tt.now))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkEvaluation(t, ev, tt.want, tt.wantNext)
		})
	}
}

func TestEvaluateData(t *testing.T) {
	// The result of Kapacity's ConfigMap fetcher test: 10:06 → 3, 10:08 → 6, 10:10 → 9, expiring 12:05:51.
	series := func(expire *metav1.Time) *v1alpha1.HorizontalPortraitData {
		return &v1alpha1.HorizontalPortraitData{
			Type: v1alpha1.TimeSeriesHorizontalPortraitDataType,
			TimeSeries: &v1alpha1.TimeSeriesHorizontalPortraitData{TimeSeries: []v1alpha1.ReplicaTimeSeriesPoint{
				{Timestamp: 1695290760, Replicas: 3}, {Timestamp: 1695290880, Replicas: 6}, {Timestamp: 1695291000, Replicas: 9},
			}},
			ExpireTime: expire,
		}
	}
	expire := mtime(t, "2023-09-21T12:05:51Z")
	const id = "Dynamic-Predictive"
	tests := []struct {
		name     string
		data     *v1alpha1.HorizontalPortraitData
		now      string
		want     *v1alpha1.HorizontalPortraitValue
		wantNext string
	}{
		{"no data yet", nil, "2023-09-21T10:00:00Z", nil, ""},
		{"before the first point", series(expire), "2023-09-21T10:00:00Z", nil, "2023-09-21T10:06:00Z"},
		{"on the first point", series(expire), "2023-09-21T10:06:00Z",
			value(id, 3, mtime(t, "2023-09-21T10:08:00Z")), "2023-09-21T10:08:00Z"},
		{"between points", series(expire), "2023-09-21T10:09:59Z",
			value(id, 6, mtime(t, "2023-09-21T10:10:00Z")), "2023-09-21T10:10:00Z"},
		{"last point holds until the data expires", series(expire), "2023-09-21T11:00:00Z",
			value(id, 9, expire), "2023-09-21T12:05:51Z"},
		{"last point without expiry holds forever", series(nil), "2023-09-21T11:00:00Z", value(id, 9, nil), ""},
		{"next point after the data expiry", series(mtime(t, "2023-09-21T10:07:00Z")), "2023-09-21T10:06:30Z",
			value(id, 3, mtime(t, "2023-09-21T10:07:00Z")), "2023-09-21T10:07:00Z"},
		{"expired data", series(expire), "2023-09-21T12:05:51Z", nil, ""},
		{"static data", &v1alpha1.HorizontalPortraitData{Type: v1alpha1.StaticHorizontalPortraitDataType,
			Static: &v1alpha1.StaticHorizontalPortraitData{Replicas: 4}}, "2023-09-21T10:00:00Z", value(id, 4, nil), ""},
		{"static data of zero replicas is no value", &v1alpha1.HorizontalPortraitData{Type: v1alpha1.StaticHorizontalPortraitDataType,
			Static: &v1alpha1.StaticHorizontalPortraitData{Replicas: 0}}, "2023-09-21T10:00:00Z", nil, ""},
		{"cron data ends at the data expiry", &v1alpha1.HorizontalPortraitData{Type: v1alpha1.CronHorizontalPortraitDataType,
			Cron:       &v1alpha1.CronHorizontalPortraitData{Crons: []v1alpha1.ReplicaCron{quickStartCron}},
			ExpireTime: mtime(t, "2024-05-01T12:08:00Z")}, "2024-05-01T12:05:00Z",
			value(id, 5, mtime(t, "2024-05-01T12:08:00Z")), "2024-05-01T12:08:00Z"},
		{"cron data outside the window", &v1alpha1.HorizontalPortraitData{Type: v1alpha1.CronHorizontalPortraitDataType,
			Cron: &v1alpha1.CronHorizontalPortraitData{Crons: []v1alpha1.ReplicaCron{quickStartCron}}}, "2024-05-01T12:15:00Z",
			nil, "2024-05-01T13:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := EvaluateData(id, tt.data, mustTime(t, tt.now))
			if err != nil {
				t.Fatal(err)
			}
			checkEvaluation(t, ev, tt.want, tt.wantNext)
		})
	}

	if _, err := EvaluateData(id, &v1alpha1.HorizontalPortraitData{Type: "Magic"}, time.Now()); err == nil {
		t.Error("unknown data type: want an error")
	}
}

func TestMerge(t *testing.T) {
	now := mustTime(t, "2024-05-01T12:05:00Z")
	cand := func(prio int32, v *v1alpha1.HorizontalPortraitValue) Candidate {
		return Candidate{Priority: prio, Evaluation: Evaluation{Value: v}}
	}
	tests := []struct {
		name       string
		candidates []Candidate
		wantIndex  int
		wantReason string
		wantNext   string
	}{
		{"higher priority wins", []Candidate{cand(1, value("Static", 10, nil)), cand(2, value("Cron", 5, mtime(t, "2024-05-01T12:10:00Z")))},
			1, ReasonPortraitValueSelected, "2024-05-01T12:10:00Z"},
		{"equal priority: more replicas win", []Candidate{cand(1, value("Static", 3, nil)), cand(1, value("Dynamic-Reactive", 4, nil))},
			1, ReasonPortraitValueSelected, ""},
		{"full tie: earlier provider wins", []Candidate{cand(1, value("Static", 4, nil)), cand(1, value("Dynamic-Reactive", 4, nil))},
			0, ReasonPortraitValueSelected, ""},
		{"expired value is ignored", []Candidate{cand(1, value("Static", 1, nil)), cand(2, value("Cron", 5, mtime(t, "2024-05-01T12:05:00Z")))},
			0, ReasonPortraitValueSelected, ""},
		{"nil values are skipped", []Candidate{cand(9, nil), cand(1, value("Static", 1, nil))}, 1, ReasonPortraitValueSelected, ""},
		{"zero replicas is a valid value", []Candidate{cand(1, value("Static", 0, nil))}, 0, ReasonPortraitValueSelected, ""},
		{"nothing valid", []Candidate{{Priority: 2, Evaluation: Evaluation{NextChange: mustTime(t, "2024-05-01T13:00:00Z")}},
			cand(1, value("Dynamic-Predictive", 3, mtime(t, "2024-05-01T12:00:00Z")))},
			-1, ReasonNoValidPortraitValue, "2024-05-01T13:00:00Z"},
		{"no candidates", nil, -1, ReasonNoValidPortraitValue, ""},
		{"next change covers losers too", []Candidate{
			cand(5, value("Static", 1, nil)),
			{Priority: 1, Evaluation: Evaluation{NextChange: mustTime(t, "2024-05-01T12:06:00Z")}}},
			0, ReasonPortraitValueSelected, "2024-05-01T12:06:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Merge(tt.candidates, now)
			if res.Index != tt.wantIndex || res.Reason != tt.wantReason {
				t.Fatalf("Merge = index %d reason %q (%s); want index %d reason %q", res.Index, res.Reason, res.Message, tt.wantIndex, tt.wantReason)
			}
			if tt.wantIndex >= 0 {
				if res.Value == nil || res.Value.Replicas != tt.candidates[tt.wantIndex].Value.Replicas || res.Priority != tt.candidates[tt.wantIndex].Priority {
					t.Errorf("value %+v, priority %d; want candidate %d", res.Value, res.Priority, tt.wantIndex)
				}
				if res.Value == tt.candidates[tt.wantIndex].Value {
					t.Error("the value must be a copy, so that callers can store it without aliasing the candidate")
				}
			} else if res.Value != nil {
				t.Errorf("value = %+v, want nil", res.Value)
			}
			var next time.Time
			if tt.wantNext != "" {
				next = mustTime(t, tt.wantNext)
			}
			if !res.NextChange.Equal(next) {
				t.Errorf("NextChange = %v, want %v", res.NextChange, next)
			}
		})
	}
}

// The quick-start IHPA: Static 1 at priority 1 and cron-1 (5 replicas, minutes 0–10) at priority 2.
func TestEvaluateAndMergeQuickStart(t *testing.T) {
	providers := []v1alpha1.HorizontalPortraitProvider{
		{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 1, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 1}},
		{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 2, Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{quickStartCron}}},
	}
	tests := []struct {
		now          string
		wantReplicas int32
		wantProvider string
		wantNext     string
	}{
		{"2024-05-01T11:59:59Z", 1, "Static", "2024-05-01T12:00:00Z"},
		{"2024-05-01T12:00:00Z", 5, "Cron", "2024-05-01T12:10:00Z"},
		{"2024-05-01T12:09:59Z", 5, "Cron", "2024-05-01T12:10:00Z"},
		{"2024-05-01T12:10:00Z", 1, "Static", "2024-05-01T13:00:00Z"},
	}
	for _, tt := range tests {
		now := mustTime(t, tt.now)
		var cands []Candidate
		for i := range providers {
			ev, err := Evaluate(&providers[i], nil, now)
			if err != nil {
				t.Fatal(err)
			}
			cands = append(cands, Candidate{Priority: providers[i].Priority, Evaluation: ev})
		}
		res := Merge(cands, now)
		if res.Value == nil || res.Value.Replicas != tt.wantReplicas || res.Value.Provider != tt.wantProvider {
			t.Errorf("at %s: value %+v, want %s/%d", tt.now, res.Value, tt.wantProvider, tt.wantReplicas)
		}
		if !res.NextChange.Equal(mustTime(t, tt.wantNext)) {
			t.Errorf("at %s: NextChange %v, want %s", tt.now, res.NextChange, tt.wantNext)
		}
	}
}

func TestEvaluateErrors(t *testing.T) {
	now := time.Now()
	for _, p := range []v1alpha1.HorizontalPortraitProvider{
		{Type: v1alpha1.StaticHorizontalPortraitProviderType},
		{Type: v1alpha1.CronHorizontalPortraitProviderType},
		{Type: "Magic"},
	} {
		if _, err := Evaluate(&p, nil, now); err == nil {
			t.Errorf("Evaluate(%s without its block): want an error", p.Type)
		}
	}
}
