package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

func newValidator(t *testing.T) *validator {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return &validator{decoder: admission.NewDecoder(s), jobServiceAccount: "kapacity-algorithm-job"}
}

// predictiveProvider is a Dynamic Predictive provider whose ExternalJob template runs as sa.
func predictiveProvider(sa string) v1alpha1.HorizontalPortraitProvider {
	return v1alpha1.HorizontalPortraitProvider{Type: v1alpha1.DynamicHorizontalPortraitProviderType, Priority: 2,
		Dynamic: &v1alpha1.DynamicHorizontalPortraitProvider{PortraitSpec: predictiveSpec(sa)}}
}

func predictiveSpec(sa string) v1alpha1.PortraitSpec {
	return v1alpha1.PortraitSpec{
		PortraitType: v1alpha1.PredictivePortraitType,
		Metrics: []v1alpha1.MetricSpec{{MetricSpec: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}}}},
		Algorithm: v1alpha1.PortraitAlgorithm{Type: v1alpha1.ExternalJobPortraitAlgorithmType, ExternalJob: &v1alpha1.ExternalJobPortraitAlgorithm{
			Job: v1alpha1.PortraitAlgorithmJob{Type: v1alpha1.CronJobPortraitAlgorithmJobType, CronJob: &v1alpha1.CronJobPortraitAlgorithmJob{
				Template: v1alpha1.CronJobTemplateSpec{Spec: batchv1.CronJobSpec{Schedule: "0/30 * * * *", JobTemplate: batchv1.JobTemplateSpec{
					Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						ServiceAccountName: sa, RestartPolicy: corev1.RestartPolicyOnFailure,
						Containers: []corev1.Container{{Name: "algorithm", Image: "example.com/algorithm"}},
					}}}}}}}},
			ResultSource: v1alpha1.PortraitAlgorithmResultSource{Type: v1alpha1.ConfigMapPortraitAlgorithmResultSourceType},
		}},
	}
}

func request(t *testing.T, kind string, op admissionv1.Operation, sub string, obj, old runtime.Object) admission.Request {
	t.Helper()
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Kind: kind},
		Name:      "web",
		Operation: op, SubResource: sub,
		Object: raw(obj), OldObject: raw(old),
	}}
}

func ihpa(mutate func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec)) *v1alpha1.IntelligentHorizontalPodAutoscaler {
	a := &v1alpha1.IntelligentHorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: kindIHPA},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: v1alpha1.IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    1, MaxReplicas: 10,
			PortraitProviders: []v1alpha1.HorizontalPortraitProvider{
				{Type: v1alpha1.StaticHorizontalPortraitProviderType, Static: &v1alpha1.StaticHorizontalPortraitProvider{Replicas: 2}},
				{Type: v1alpha1.CronHorizontalPortraitProviderType, Priority: 1, Cron: &v1alpha1.CronHorizontalPortraitProvider{Crons: []v1alpha1.ReplicaCron{
					{Name: "morning", Start: "0 8 * * *", End: "0 12 * * *", Replicas: 5},
				}}},
			},
		},
	}
	if mutate != nil {
		mutate(&a.Spec)
	}
	return a
}

// denial returns the causes of a refusal, "field: message" each, or fails when allowed.
func denial(t *testing.T, res admission.Response) []string {
	t.Helper()
	if res.Allowed {
		t.Fatal("allowed, want a refusal")
	}
	if res.Result == nil || res.Result.Code != http.StatusUnprocessableEntity || res.Result.Details == nil {
		t.Fatalf("refusal %+v, want 422 Invalid with details", res.Result)
	}
	var causes []string
	for _, c := range res.Result.Details.Causes {
		causes = append(causes, c.Field+": "+c.Message)
	}
	return causes
}

func TestValidationHandler(t *testing.T) {
	v := newValidator(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		req   admission.Request
		want  []string // a piece of each cause, in order; nil: allowed
		Error bool
	}{
		{name: "valid IHPA", req: request(t, kindIHPA, admissionv1.Create, "", ihpa(nil), nil)},
		{
			name: "predictive provider whose job runs as the jobs' ServiceAccount",
			req: request(t, kindIHPA, admissionv1.Create, "", ihpa(func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders = append(s.PortraitProviders, predictiveProvider("kapacity-algorithm-job"))
			}), nil),
		},
		{
			// The tenant escape: an IHPA asking its job to run as the manager.
			name: "predictive provider whose job runs as the manager",
			req: request(t, kindIHPA, admissionv1.Create, "", ihpa(func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders = append(s.PortraitProviders, predictiveProvider("kapacity-manager"))
			}), nil),
			want: []string{`spec.portraitProviders[2].dynamic.algorithm.externalJob.job.cronJob.template.spec.jobTemplate.spec.template.spec.serviceAccountName: Invalid value: "kapacity-manager"`},
		},
		{
			name: "cron time zone prefix without expression",
			req: request(t, kindIHPA, admissionv1.Create, "", ihpa(func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[0].Start = "TZ=UTC"
			}), nil),
			want: []string{"spec.portraitProviders[1].cron.crons[0].start: Invalid value: \"TZ=UTC\""},
		},
		{
			name: "overlapping windows and duplicate names",
			req: request(t, kindIHPA, admissionv1.Create, "", ihpa(func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons = append(s.PortraitProviders[1].Cron.Crons,
					v1alpha1.ReplicaCron{Name: "morning", Start: "0 10 * * *", End: "0 13 * * *", Replicas: 3})
			}), nil),
			want: []string{
				"spec.portraitProviders[1].cron.crons[1].name: Duplicate value",
				`spec.portraitProviders[1].cron.crons[1]: Invalid value: "morning": overlaps cron "morning"`,
			},
		},
		{
			name: "target change",
			req: request(t, kindIHPA, admissionv1.Update, "", ihpa(func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
				s.ScaleTargetRef.Name = "api"
			}), ihpa(nil)),
			want: []string{"spec.scaleTargetRef: Forbidden: scaleTargetRef is immutable"},
		},
		{
			// A stored object that breaks a newer rule can still lose a finalizer or get a label.
			name: "metadata-only update of an invalid IHPA",
			req: request(t, kindIHPA, admissionv1.Update, "", ihpa(func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[0].Start = "TZ=UTC"
			}), ihpa(func(s *v1alpha1.IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[0].Start = "TZ=UTC"
			})),
		},
		{
			name: "replica profile target change",
			req:  request(t, kindReplicaProfile, admissionv1.Update, "", profile("api", 3), profile("web", 3)),
			want: []string{"spec.scaleTargetRef: Forbidden"},
		},
		{name: "replica profile counts change", req: request(t, kindReplicaProfile, admissionv1.Update, "", profile("web", 4), profile("web", 3))},
		{
			name: "unsorted time series written to a portrait's status",
			req:  request(t, kindPortrait, admissionv1.Update, "status", portraitWith(200, 100), portraitWith()),
			want: []string{"status.portraitData.timeSeries.timeSeries[1].timestamp: Invalid value: 100: must be after the previous point's timestamp (200)"},
		},
		{name: "sorted time series", req: request(t, kindPortrait, admissionv1.Update, "status", portraitWith(100, 200), portraitWith())},
		{
			name: "portrait spec without an algorithm",
			req: request(t, kindPortrait, admissionv1.Create, "", func() runtime.Object {
				p := portraitWith()
				p.Spec.Algorithm.Type = ""
				return p
			}(), nil),
			want: []string{"spec.algorithm.type: Required value"},
		},
		{
			name: "portrait whose job mounts the node's file system",
			req: request(t, kindPortrait, admissionv1.Create, "", func() runtime.Object {
				p := portraitWith()
				p.Spec.PortraitSpec = predictiveSpec("")
				pod := &p.Spec.Algorithm.ExternalJob.Job.CronJob.Template.Spec.JobTemplate.Spec.Template.Spec
				pod.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
				return p
			}(), nil),
			want: []string{`spec.algorithm.externalJob.job.cronJob.template.spec.jobTemplate.spec.template.spec: Forbidden: violates Pod Security "restricted": restricted volume types (volume "root" uses restricted volume type "hostPath")`},
		},
		{name: "portrait without a spec, as in the documentation's output sample", req: request(t, kindPortrait, admissionv1.Create, "", &v1alpha1.HorizontalPortrait{
			TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: kindPortrait}, ObjectMeta: metav1.ObjectMeta{Name: "p"},
		}, nil)},
		{name: "delete is not checked", req: request(t, kindIHPA, admissionv1.Delete, "", nil, ihpa(nil))},
		{name: "another kind", req: request(t, "Pod", admissionv1.Create, "", ihpa(nil), nil), Error: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := v.Handle(ctx, tc.req)
			switch {
			case tc.Error:
				if res.Allowed || res.Result == nil || res.Result.Code != http.StatusBadRequest {
					t.Fatalf("got %+v, want a 400", res.Result)
				}
			case tc.want == nil:
				if !res.Allowed {
					t.Fatalf("refused: %+v", res.Result)
				}
			default:
				causes := denial(t, res)
				if len(causes) != len(tc.want) {
					t.Fatalf("causes %q, want %d", causes, len(tc.want))
				}
				for i, w := range tc.want {
					if !strings.Contains(causes[i], w) {
						t.Errorf("cause %d = %q, want it to contain %q", i, causes[i], w)
					}
				}
				if !strings.Contains(res.Result.Message, "is invalid: ") {
					t.Errorf("message %q does not say the object is invalid", res.Result.Message)
				}
			}
		})
	}
}

func profile(target string, online int32) *v1alpha1.ReplicaProfile {
	return &v1alpha1.ReplicaProfile{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: kindReplicaProfile},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: v1alpha1.ReplicaProfileSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			OnlineReplicas: online,
		},
	}
}

func portraitWith(timestamps ...int64) *v1alpha1.HorizontalPortrait {
	p := &v1alpha1.HorizontalPortrait{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: kindPortrait},
		ObjectMeta: metav1.ObjectMeta{Name: "web-predictive", Namespace: "ns"},
		Spec: v1alpha1.HorizontalPortraitSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			PortraitSpec:   v1alpha1.PortraitSpec{PortraitType: v1alpha1.PredictivePortraitType, Algorithm: v1alpha1.PortraitAlgorithm{Type: "Prophet"}},
		},
	}
	if len(timestamps) > 0 {
		series := &v1alpha1.TimeSeriesHorizontalPortraitData{}
		for _, ts := range timestamps {
			series.TimeSeries = append(series.TimeSeries, v1alpha1.ReplicaTimeSeriesPoint{Timestamp: ts, Replicas: 1})
		}
		p.Status.PortraitData = &v1alpha1.HorizontalPortraitData{Type: v1alpha1.TimeSeriesHorizontalPortraitDataType, TimeSeries: series}
	}
	return p
}

// The ValidatingWebhookConfiguration that `kubectl apply -k deploy/` installs is ValidatingWebhooks
// with the Service as client: same names, rules, failure policies, match conditions and timeouts.
func TestDeployedValidatingWebhooksMatch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "manager", "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096)
	var deployed *admissionregistrationv1.ValidatingWebhookConfiguration
	for {
		var doc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc.Kind == "ValidatingWebhookConfiguration" {
			deployed = &doc
		}
	}
	if deployed == nil {
		t.Fatal("no ValidatingWebhookConfiguration in deploy/manager/webhook.yaml")
	}
	if deployed.Name != DefaultOptions().ValidatingConfigurationName {
		t.Errorf("deployed name %q, the manager keeps the caBundle of %q", deployed.Name, DefaultOptions().ValidatingConfigurationName)
	}
	want := ValidatingWebhooks(admissionregistrationv1.WebhookClientConfig{
		Service: &admissionregistrationv1.ServiceReference{Namespace: "kapacity-system", Name: "kapacity-webhook", Port: ptrTo[int32](443)},
	})
	if !reflect.DeepEqual(deployed.Webhooks, want) {
		got, _ := json.MarshalIndent(deployed.Webhooks, "", "  ")
		exp, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("deploy/manager/webhook.yaml has\n%s\nwant\n%s", got, exp)
	}
}

func ptrTo[T any](v T) *T { return &v }
