package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/ihpa"
	"github.com/kapacitystack/kapacity/test/poll"
)

func admissionIHPA(ns, name string) *v1alpha1.IntelligentHorizontalPodAutoscaler {
	return &v1alpha1.IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "absent"},
			MinReplicas:    1, MaxReplicas: 10,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{
				{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 0, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 1}},
				{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 1, Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{
					{Name: "morning", TimeZone: "Asia/Shanghai", Start: "0 8 * * *", End: "0 12 * * *", Replicas: 5},
				}}},
			},
		},
	}
}

func admissionPortrait(ns, name string) *v1alpha1.HorizontalPortrait {
	return &v1alpha1.HorizontalPortrait{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.HorizontalPortraitSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "absent"},
			PortraitSpec: v1alpha1.PortraitSpec{PortraitType: v1alpha1.PredictivePortraitType, ExternalGeneratorName: "e2e",
				Algorithm: v1alpha1.PortraitAlgorithm{Type: "Prophet"}},
		},
	}
}

func admissionProfile(ns, name, target string) *v1alpha1.ReplicaProfile {
	return &v1alpha1.ReplicaProfile{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ReplicaProfileSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: target},
			Paused:         true, // nothing to reconcile: the workload does not exist
		},
	}
}

func timeSeries(timestamps ...int64) *v1alpha1.HorizontalPortraitData {
	d := &v1alpha1.HorizontalPortraitData{Type: v1alpha1.TimeSeriesHorizontalPortraitDataType, TimeSeries: &v1alpha1.TimeSeriesHorizontalPortraitData{}}
	for _, ts := range timestamps {
		d.TimeSeries.TimeSeries = append(d.TimeSeries.TimeSeries, v1alpha1.ReplicaTimeSeriesPoint{Timestamp: ts, Replicas: 2})
	}
	return d
}

// refused fails unless err is a refusal whose message contains every piece of want.
func refused(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want a refusal naming %q", what, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: refusal %q lacks %q", what, err, w)
		}
	}
}

// TestAdmissionRefusesBadInput: each class of bad input to the three kinds is refused by the API
// server, by the CRD's CEL rules or by the validating webhook, with a message that names the field
// and says how to fix it.
func TestAdmissionRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	useManager(t)
	ns := newNamespace(ctx, t)

	ihpaCases := []struct {
		name   string
		mutate func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec)
		want   []string
	}{
		{"time zone prefix without an expression (robfig/cron panicked on it)", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			s.PortraitProviders[1].Cron.Crons[0].Start = "CRON_TZ=Asia/Tokyo"
		}, []string{`spec.portraitProviders[1].cron.crons[0].start`, "must be followed by a space and a cron expression"}},
		{"cron syntax", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			s.PortraitProviders[1].Cron.Crons[0].End = "0 25 * * *"
		}, []string{"spec.portraitProviders[1].cron.crons[0].end", "must be a standard cron expression"}},
		{"unknown time zone", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			s.PortraitProviders[1].Cron.Crons[0].TimeZone = "Mars/Olympus"
		}, []string{"spec.portraitProviders[1].cron.crons[0].timeZone", "must be an IANA time zone name"}},
		{"overlapping windows of one priority", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			s.PortraitProviders = append(s.PortraitProviders, v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 1,
				Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{{Name: "late", TimeZone: "Asia/Shanghai", Start: "0 11 * * *", End: "0 13 * * *", Replicas: 2}}}})
		}, []string{"spec.portraitProviders[2].cron.crons[0]", `overlaps cron "morning" (spec.portraitProviders[1].cron.crons[0]) of the same priority 1`}},
		{"duplicate cron names", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			s.PortraitProviders[1].Cron.Crons = append(s.PortraitProviders[1].Cron.Crons, v1alpha1.ReplicaCron{Name: "morning", Start: "0 20 * * *", End: "0 21 * * *", Replicas: 2})
		}, []string{`spec.portraitProviders[1].cron.crons[1].name: Duplicate value: "morning"`, "give each rule its own name"}},
		{"duplicate dynamic portrait types", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			for range 2 {
				s.PortraitProviders = append(s.PortraitProviders, v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 2,
					Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{PortraitType: "Predictive", ExternalGeneratorName: "e2e", Algorithm: v1alpha1.PortraitAlgorithm{Type: "Prophet"}}}})
			}
		}, []string{"spec.portraitProviders[3].dynamic.portraitType: Duplicate value", "give each dynamic provider its own portraitType"}},
		{"min above max (CEL)", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) { s.MinReplicas = 11 },
			[]string{"spec.maxReplicas", "raise spec.maxReplicas or lower spec.minReplicas"}},
		{"provider type without its block (CEL)", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) { s.PortraitProviders[0].Static = nil },
			[]string{"spec.portraitProviders[0].static", "static must be set when type is Static"}},
		{"gray percent out of range (schema)", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			s.Behavior.ScaleDown.GrayStrategy = &v1alpha1.GrayStrategy{GrayState: v1alpha1.PodStateCutoff, ChangeIntervalSeconds: 10, ChangePercent: 101}
		}, []string{"spec.behavior.scaleDown.grayStrategy.changePercent", "should be less than or equal to 100"}},
		{"too many cron rules in all (CEL)", func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
			for p := range 3 {
				var crons []v1alpha1.ReplicaCron
				for i := range 30 {
					crons = append(crons, v1alpha1.ReplicaCron{Name: fmt.Sprint(i), Start: fmt.Sprintf("%d 1 * * *", i), End: fmt.Sprintf("%d 2 * * *", i), Replicas: 1})
				}
				s.PortraitProviders = append(s.PortraitProviders, v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: int32(10 + p),
					Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: crons}})
			}
		}, []string{"spec.portraitProviders", "at most 64 cron rules in all"}},
	}
	for i, tc := range ihpaCases {
		t.Run("IHPA "+tc.name, func(t *testing.T) {
			a := admissionIHPA(ns, fmt.Sprintf("bad-%d", i))
			tc.mutate(&a.Spec)
			refused(t, "create", crClient.Create(ctx, a), tc.want...)
		})
	}

	t.Run("IHPA target change", func(t *testing.T) {
		a := admissionIHPA(ns, "target")
		if err := crClient.Create(ctx, a); err != nil {
			t.Fatalf("a valid autoscaler was refused: %v", err)
		}
		refused(t, "update", updateLatest(ctx, a, false, func() { a.Spec.ScaleTargetRef.Name = "other" }),
			"spec.scaleTargetRef", "scaleTargetRef is immutable")
	})

	t.Run("HorizontalPortrait data", func(t *testing.T) {
		hp := admissionPortrait(ns, "data")
		if err := crClient.Create(ctx, hp); err != nil {
			t.Fatalf("a valid portrait was refused: %v", err)
		}
		for _, c := range []struct {
			name string
			data *v1alpha1.HorizontalPortraitData
			want []string
		}{
			{"unsorted time series (CEL)", timeSeries(200, 100), []string{"status.portraitData.timeSeries.timeSeries", "timeSeries must be sorted by timestamp"}},
			{"duplicate timestamps", timeSeries(100, 100), []string{"status.portraitData.timeSeries.timeSeries[1].timestamp", "must be after the previous point's timestamp (100)"}},
			{"overlapping cron data", &v1alpha1.HorizontalPortraitData{Type: v1alpha1.CronHorizontalPortraitDataType, Cron: &v1alpha1.CronHorizontalPortraitData{Crons: []v1alpha1.ReplicaCron{
				{Name: "a", Start: "0 1 * * *", End: "0 3 * * *", Replicas: 1}, {Name: "b", Start: "0 2 * * *", End: "0 4 * * *", Replicas: 1},
			}}}, []string{"status.portraitData.cron.crons[1]", `overlaps cron "a"`}},
		} {
			refused(t, c.name, updateLatest(ctx, hp, true, func() { hp.Status.PortraitData = c.data }), c.want...)
		}
		if err := updateLatest(ctx, hp, true, func() { hp.Status.PortraitData = timeSeries(100, 200) }); err != nil {
			t.Errorf("valid data refused: %v", err)
		}
	})

	t.Run("HorizontalPortrait spec", func(t *testing.T) {
		hp := admissionPortrait(ns, "spec")
		hp.Spec.PortraitType = "Not_A_Label"
		refused(t, "create", crClient.Create(ctx, hp), "spec.portraitType", "must be a DNS label apart from case")
	})

	t.Run("ReplicaProfile", func(t *testing.T) {
		rp := admissionProfile(ns, "rp", "absent")
		if err := crClient.Create(ctx, rp); err != nil {
			t.Fatalf("a valid profile was refused: %v", err)
		}
		refused(t, "target change (CEL)", updateLatest(ctx, rp, false, func() { rp.Spec.ScaleTargetRef.Name = "other" }),
			"spec.scaleTargetRef", "scaleTargetRef is immutable")
		rp = admissionProfile(ns, "sorter", "absent")
		rp.Spec.Behavior.PodSorter = v1alpha1.PodSorter{Type: v1alpha1.ExternalPodSorterType}
		refused(t, "external sorter without its block (CEL)", crClient.Create(ctx, rp), "spec.behavior.podSorter.external", "external must be set when type is External")
		rp = admissionProfile(ns, "name", strings.Repeat("x", 254))
		refused(t, "target name", crClient.Create(ctx, rp), "spec.scaleTargetRef.name")
	})
}

// TestAdmissionAcceptsTheQuickStartSamples: Kapacity's documentation samples pass the schema, the
// CEL rules and the validating webhook unchanged (server-side dry run: no controller acts on them).
func TestAdmissionAcceptsTheQuickStartSamples(t *testing.T) {
	ctx := context.Background()
	useManager(t)
	ns := newNamespace(ctx, t)
	samples, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "examples", "quickstart", "*.yaml"))
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, sample := range samples {
		t.Run(filepath.Base(sample), func(t *testing.T) {
			raw, err := os.ReadFile(sample)
			if err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
				t.Fatal(err)
			}
			obj.SetNamespace(ns)
			if err := crClient.Create(ctx, obj, client.DryRunAll); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// TestAdmissionWithTheManagerDown: with the webhook unreachable, autoscalers are refused (Fail)
// and say why, metadata-only updates still pass, and the CRDs' CEL rules still refuse what they
// can for the kinds the manager itself writes (Ignore).
func TestAdmissionWithTheManagerDown(t *testing.T) {
	ctx := context.Background()
	m := useManager(t)
	ns := newNamespace(ctx, t)
	existing := admissionIHPA(ns, "existing")
	if err := crClient.Create(ctx, existing); err != nil {
		t.Fatal(err)
	}
	rp := admissionProfile(ns, "rp", "absent")
	if err := crClient.Create(ctx, rp); err != nil {
		t.Fatal(err)
	}
	hp := admissionPortrait(ns, "hp")
	if err := crClient.Create(ctx, hp); err != nil {
		t.Fatal(err)
	}

	m.Stop()
	t.Cleanup(func() {
		if err := m.Start(); err != nil {
			t.Errorf("restarting the manager: %v", err)
		}
	})

	// The controllers wrote to these objects (status, finalizers) before the manager stopped.
	for _, obj := range []client.Object{existing, rp, hp} {
		if err := crClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
	}
	refused(t, "a new autoscaler", crClient.Create(ctx, admissionIHPA(ns, "new")), `failed calling webhook "vihpa.kapacitystack.io"`)
	existing.Labels = map[string]string{"team": "web"}
	if err := crClient.Update(ctx, existing); err != nil {
		t.Errorf("a metadata-only update was refused with the webhook down: %v", err)
	}
	rp.Spec.ScaleTargetRef.Name = "other"
	refused(t, "profile target change", crClient.Update(ctx, rp), "spec.scaleTargetRef", "scaleTargetRef is immutable")
	hp.Status.PortraitData = timeSeries(300, 200)
	refused(t, "unsorted portrait data", crClient.Status().Update(ctx, hp), "timeSeries must be sorted by timestamp")
	hp.Status.PortraitData = timeSeries(200, 300)
	if err := crClient.Status().Update(ctx, hp); err != nil {
		t.Errorf("valid portrait data refused with the webhook down: %v", err)
	}
}

// TestBrokenProviderFallsBackToStatic: a Dynamic provider whose HorizontalPortrait belongs to
// someone else cannot be evaluated; the Static fallback is applied all the same, and the IHPA's
// ProvidersHealthy condition and a Warning event name the broken provider.
func TestBrokenProviderFallsBackToStatic(t *testing.T) {
	ctx := context.Background()
	useManager(t)
	ns := newNamespace(ctx, t)
	dumpOnFailure(t, ns)
	createNginx(ctx, t, ns, 1)
	if err := crClient.Create(ctx, admissionPortrait(ns, "web-predictive")); err != nil {
		t.Fatal(err)
	}
	a := admissionIHPA(ns, "web")
	a.Spec.ScaleTargetRef.Name = "nginx"
	a.Spec.PortraitProviders = []v1alpha1.HorizontalPortraitProvider{
		{Type: v1alpha1.StaticHorizontalPortraitProviderType, Priority: 0, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 3}},
		{Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 5, Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: v1alpha1.PortraitSpec{
			PortraitType: v1alpha1.PredictivePortraitType, ExternalGeneratorName: "e2e", Algorithm: v1alpha1.PortraitAlgorithm{Type: "Prophet"},
		}}},
	}
	if err := crClient.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	poll.Until(ctx, t, time.Minute, "the Static fallback applied and the broken provider named", func(ctx context.Context) (string, bool, error) {
		sts, err := kube.AppsV1().StatefulSets(ns).Get(ctx, "nginx", metav1.GetOptions{})
		if err != nil {
			return observationError(ctx, err), false, nil
		}
		got := &v1alpha1.IntelligentHorizontalPodAutoscaler{}
		if err := crClient.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
			return observationError(ctx, err), false, nil
		}
		c := meta.FindStatusCondition(got.Status.Conditions, string(ihpa.ConditionProvidersHealthy))
		seen := fmt.Sprintf("sts replicas %d, %s %+v", ptr.Deref(sts.Spec.Replicas, 0), ihpa.ConditionProvidersHealthy, c)
		return seen, ptr.Deref(sts.Spec.Replicas, 0) == 3 && c != nil && c.Status == metav1.ConditionFalse &&
			strings.Contains(c.Message, "spec.portraitProviders[1] (Dynamic-Predictive): HorizontalPortrait web-predictive exists and is not controlled by this autoscaler"), nil
	})
	var warned bool
	for _, e := range ihpaEvents(ctx, ns, "web") {
		warned = warned || (strings.HasPrefix(e, corev1.EventTypeWarning+" "+ihpa.ReasonFailedFetchPortrait) && strings.Contains(e, "spec.portraitProviders[1] (Dynamic-Predictive)"))
	}
	if !warned {
		t.Errorf("no Warning %s event naming the broken provider: %q", ihpa.ReasonFailedFetchPortrait, ihpaEvents(ctx, ns, "web"))
	}
}

// updateLatest applies change to the newest obj and writes it (its status subresource when status
// is set), again on a conflict: the controllers write these objects too, and the test wants the
// API server's verdict on the change, not a lost race.
func updateLatest(ctx context.Context, obj client.Object, status bool, change func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := crClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		if status {
			return crClient.Status().Update(ctx, obj)
		}
		return crClient.Update(ctx, obj)
	})
}
