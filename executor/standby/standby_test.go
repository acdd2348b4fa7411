package standby

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func container(name, cpu string) corev1.Container {
	c := corev1.Container{Name: name}
	if cpu != "" {
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("256Mi")}
	}
	return c
}

func burstable(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0"},
		Spec:       corev1.PodSpec{Containers: containers},
		Status:     corev1.PodStatus{QOSClass: corev1.PodQOSBurstable},
	}
}

func encoded(r Requests) string {
	if r == nil {
		return ""
	}
	return r.Encode()
}

func TestPlan(t *testing.T) {
	restart := container("app", "1")
	restart.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.RestartContainer}}
	memRestart := container("app", "1")
	memRestart.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
	guaranteed := burstable(container("app", "1"))
	guaranteed.Status.QOSClass = corev1.PodQOSGuaranteed
	podLevel := burstable(container("app", "1"))
	podLevel.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}
	sidecar := burstable(container("app", "500m"))
	sidecar.Spec.InitContainers = []corev1.Container{container("proxy", "1")}

	tests := []struct {
		name       string
		pod        *corev1.Pod
		opts       Options
		wantOrig   string // encoded originals
		wantReduce string // encoded reduced requests
		wantReason string // substring
	}{
		{"10% of each container, floor 10m", burstable(container("app", "1"), container("log", "200m")), DefaultOptions(),
			`{"app":"1","log":"200m"}`, `{"app":"100m","log":"20m"}`, ""},
		{"the floor wins over the fraction", burstable(container("app", "50m")), DefaultOptions(),
			`{"app":"50m"}`, `{"app":"10m"}`, ""},
		{"rounded up to the millicore", burstable(container("app", "150m")), Options{CPUFraction: 0.25, MinCPU: resource.MustParse("1m")},
			`{"app":"150m"}`, `{"app":"38m"}`, ""},
		{"containers at or below the floor are left alone", burstable(container("app", "1"), container("tiny", "10m"), container("none", "")), DefaultOptions(),
			`{"app":"1"}`, `{"app":"100m"}`, ""},
		{"fraction 0 keeps the floor", burstable(container("app", "2")), Options{MinCPU: resource.MustParse("25m")},
			`{"app":"2"}`, `{"app":"25m"}`, ""},
		{"a memory restart policy does not matter", burstable(memRestart), DefaultOptions(),
			`{"app":"1"}`, `{"app":"100m"}`, ""},
		{"sidecars keep their requests", sidecar, DefaultOptions(),
			`{"app":"500m"}`, `{"app":"50m"}`, ""},
		{"best effort: nothing to release", burstable(container("app", "")), DefaultOptions(), "", "", "no container has a CPU request above 10m"},
		{"all at the floor", burstable(container("app", "10m")), DefaultOptions(), "", "", "no container has a CPU request above 10m"},
		{"guaranteed", guaranteed, DefaultOptions(), "", "", "Guaranteed"},
		{"pod-level resources", podLevel, DefaultOptions(), "", "", "pod-level"},
		{"restart on CPU resize", burstable(restart), DefaultOptions(), "", "", `container "app" restarts on a CPU resize`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, reason := Plan(tt.pod, tt.opts)
			if got := encoded(orig); got != tt.wantOrig {
				t.Errorf("originals %s, want %s", got, tt.wantOrig)
			}
			if tt.wantReason == "" && reason != "" || !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason %q, want %q", reason, tt.wantReason)
			}
			if orig == nil {
				return
			}
			reduced := Reduced(orig, tt.opts)
			if got := reduced.Encode(); got != tt.wantReduce {
				t.Errorf("reduced %s, want %s", got, tt.wantReduce)
			}
			if !Matches(tt.pod, orig) || Matches(tt.pod, reduced) {
				t.Errorf("Matches: the pod has its originals and not the reduced requests")
			}
		})
	}
}

// The originals survive the annotation exactly, whatever their notation.
func TestAnnotationRoundTrip(t *testing.T) {
	for _, cpu := range []string{"2", "1500m", "0.5", "100m", "1", "3"} {
		orig := Requests{"app": resource.MustParse(cpu), "other": resource.MustParse("250m")}
		got, err := Decode(orig.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("decoded %v", got)
		}
		for name, q := range orig {
			g := got[name]
			if g.Cmp(q) != 0 || g.String() != q.String() {
				t.Errorf("%s: %s came back as %s", name, q.String(), g.String())
			}
		}
		pod := burstable(container("app", cpu), container("other", "250m"))
		pod.Annotations = map[string]string{OriginalCPUAnnotation: orig.Encode()}
		if back, err := Originals(pod); err != nil || !Matches(pod, back) {
			t.Errorf("Originals(%s) = %v, %v", cpu, back, err)
		}
	}
	for _, bad := range []string{"", "{", "{}", `{"app":"lots"}`, `["app"]`} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%q): want an error", bad)
		}
	}
	if r, err := Originals(burstable()); r != nil || err != nil {
		t.Errorf("no annotation: %v, %v", r, err)
	}
}

func TestResizePatch(t *testing.T) {
	raw := ResizePatch(Requests{"b": resource.MustParse("20m"), "a": resource.MustParse("1")})
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"spec": map[string]any{"containers": []any{
		map[string]any{"name": "a", "resources": map[string]any{"requests": map[string]any{"cpu": "1"}}},
		map[string]any{"name": "b", "resources": map[string]any{"requests": map[string]any{"cpu": "20m"}}},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patch %s", raw)
	}
}

func TestInfeasible(t *testing.T) {
	pod := burstable()
	if _, ok := Infeasible(pod); ok {
		t.Error("no condition: not infeasible")
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodResizePending, Status: corev1.ConditionTrue, Reason: corev1.PodReasonDeferred}}
	if _, ok := Infeasible(pod); ok {
		t.Error("Deferred is not a refusal")
	}
	pod.Status.Conditions[0].Reason, pod.Status.Conditions[0].Message = corev1.PodReasonInfeasible, "static CPU manager"
	if msg, ok := Infeasible(pod); !ok || msg != "static CPU manager" {
		t.Errorf("Infeasible = %q, %v", msg, ok)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantErr bool
	}{
		{nil, "10% of their CPU requests, at least 10m", false},
		{[]string{"--standby-cpu-fraction=0.25", "--standby-min-cpu=0.05"}, "25% of their CPU requests, at least 50m", false},
		{[]string{"--standby-cpu-fraction=2"}, "", true},
		{[]string{"--standby-min-cpu=-1"}, "", true},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		fs := pflag.NewFlagSet("", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		err := o.Validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("%v: error %v", tt.args, err)
		}
		if err == nil && o.String() != tt.want {
			t.Errorf("%v: %s, want %s", tt.args, o.String(), tt.want)
		}
	}
	if o := (Options{CPUFraction: 1}); o.Enabled() {
		t.Error("fraction 1 keeps everything: resizing is off")
	}
	o := DefaultOptions()
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	o.AddFlags(fs)
	if fs.Parse([]string{"--standby-min-cpu=lots"}) == nil {
		t.Error("a bad quantity must be rejected")
	}
}
