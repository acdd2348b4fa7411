package cli

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kapacitystack/kapacity/config/portraitresult"
)

func TestWriteResultCreatesThenUpdates(t *testing.T) {
	ctx := context.Background()
	hp := testPortrait()
	hp.UID = "uid-1"
	cs := fake.NewClientset()
	k := &KubeClients{Client: cs}
	for i, data := range []map[string]string{{"type": "TimeSeries", "timeSeries": `{"1":2}`}, {"type": "TimeSeries", "timeSeries": `{"2":3}`}} {
		if err := k.WriteResult(ctx, hp, data); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "web-predictive-result", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["timeSeries"] != data["timeSeries"] || cm.Labels[portraitresult.LabelKey] != portraitresult.LabelValue {
			t.Errorf("write %d: data %v labels %v", i, cm.Data, cm.Labels)
		}
		if len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].UID != "uid-1" || !*cm.OwnerReferences[0].Controller ||
			cm.OwnerReferences[0].Kind != "HorizontalPortrait" {
			t.Errorf("owner references %+v", cm.OwnerReferences)
		}
	}
}

func TestSumRequests(t *testing.T) {
	p := corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "a", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: mustQ("250m")}}},
		{Name: "b", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: mustQ("1")}}},
	}}}
	for _, tc := range []struct {
		container string
		want      float64
	}{{"", 1.25}, {"a", 0.25}, {"c", 0}} {
		if got := sumRequests(p, corev1.ResourceCPU, tc.container); got != tc.want {
			t.Errorf("container %q: %g, want %g", tc.container, got, tc.want)
		}
	}
}

func mustQ(s string) resource.Quantity { return resource.MustParse(s) }
