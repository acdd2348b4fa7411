package deployconfig

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// Pod names as Kubernetes' controllers make them, with Kubernetes' own encoders: a ReplicaSet's
// pod-template-hash is rand.SafeEncodeString of a uint32 in decimal (controller.ComputeHash),
// a generated name suffix is rand.String(5) (names.SimpleNameGenerator), a CronJob's Job is
// named <cronjob>-<minutes since the epoch>, a StatefulSet's pods <name>-<ordinal>.
func templateHash(r *rand.Rand) string {
	return utilrand.SafeEncodeString(fmt.Sprint(r.Uint32()))
}
func deploymentPod(r *rand.Rand, name string) string {
	return name + "-" + templateHash(r) + "-" + utilrand.String(5)
}
func replicaSetPod(name string) string { return name + "-" + utilrand.String(5) }
func cronJobPod(name string, at time.Time) string {
	return fmt.Sprintf("%s-%d-%s", name, at.Unix()/60, utilrand.String(5))
}

// TestDefaultPatternsMatchOnlyOwnPods: each workload's pattern matches every pod its controller
// can name, and none of the pods of its neighbours: the workloads whose names extend its own
// (web-api, web-canary, web-1), workloads of other kinds with the same name (a CronJob web, a
// StatefulSet web), so that aggregates never sum foreign pods.
func TestDefaultPatternsMatchOnlyOwnPods(t *testing.T) {
	cfg, err := metricsconfig.Load(KapacityDefault())
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]string{}
	for _, p := range cfg.WorkloadPodNamePatterns {
		patterns[p.Kind] = p.Pattern
	}
	compile := func(kind, name string) *regexp.Regexp {
		re, err := metricsconfig.CompilePodNamePattern(patterns[kind], name)
		if err != nil {
			t.Fatalf("%s pattern: %v", kind, err)
		}
		return re
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Every CronJob run of a year, at one-minute schedules.
	var cronPods []string
	for m := range 365 * 24 * 60 {
		cronPods = append(cronPods, cronJobPod("web", now.Add(time.Duration(m)*time.Minute)))
	}
	many := func(n int, pod func() string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = pod()
		}
		return out
	}
	statefulSet := func(name string, replicas int) []string {
		out := make([]string, replicas)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", name, i)
		}
		return out
	}
	tests := []struct {
		kind, name string
		own        []string
		foreign    map[string][]string
	}{
		{
			kind: "Deployment", name: "web",
			own: many(20000, func() string { return deploymentPod(r, "web") }),
			foreign: map[string][]string{
				"StatefulSet web-api":  statefulSet("web-api", 100),
				"StatefulSet web":      statefulSet("web", 1000),
				"CronJob web":          cronPods,
				"Deployment web-api":   many(2000, func() string { return deploymentPod(r, "web-api") }),
				"Deployment web-bcdfg": many(2000, func() string { return deploymentPod(r, "web-bcdfg") }),
				"Deployment web-4":     many(2000, func() string { return deploymentPod(r, "web-4") }),
				"ReplicaSet web":       many(2000, func() string { return replicaSetPod("web") }),
			},
		},
		{
			kind: "ReplicaSet", name: "web-5d8f7c9b6",
			own: many(5000, func() string { return replicaSetPod("web-5d8f7c9b6") }),
			foreign: map[string][]string{
				"Deployment web-5d8f7c9b6":      many(2000, func() string { return deploymentPod(r, "web-5d8f7c9b6") }),
				"StatefulSet web-5d8f7c9b6-api": statefulSet("web-5d8f7c9b6-api", 100),
				"CronJob web-5d8f7c9b6":         cronPods[:2000],
			},
		},
		{
			kind: "StatefulSet", name: "web",
			own: statefulSet("web", 20000),
			foreign: map[string][]string{
				"StatefulSet web-api": statefulSet("web-api", 100),
				"StatefulSet web-1":   statefulSet("web-1", 100),
				"Deployment web":      many(2000, func() string { return deploymentPod(r, "web") }),
				"CronJob web":         cronPods[:2000],
				"leading zero":        {"web-00", "web-01"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.kind+" "+tc.name, func(t *testing.T) {
			re := compile(tc.kind, tc.name)
			for _, pod := range tc.own {
				if !re.MatchString(pod) {
					t.Fatalf("pattern %s misses its own pod %s", re, pod)
				}
			}
			for neighbour, pods := range tc.foreign {
				matched := 0
				for _, pod := range pods {
					if re.MatchString(pod) {
						if matched++; matched <= 3 {
							t.Errorf("pattern %s matches %s's pod %s", re, neighbour, pod)
						}
					}
				}
				if matched > 0 {
					t.Errorf("%d of %d pods of %s matched", matched, len(pods), neighbour)
				}
			}
		})
	}
}

// TestTemplateHashAlphabet: the Deployment pattern's hash class is exactly what SafeEncodeString
// makes of decimal digits, computed here from Kubernetes' own encoder rather than copied.
func TestTemplateHashAlphabet(t *testing.T) {
	cfg, err := metricsconfig.Load(KapacityDefault())
	if err != nil {
		t.Fatal(err)
	}
	encoded := utilrand.SafeEncodeString("0123456789")
	for _, p := range cfg.WorkloadPodNamePatterns {
		if p.Kind != "Deployment" {
			continue
		}
		re := regexp.MustCompile(`^\^%s-\[([^\]]+)\]\{1,10\}-`)
		m := re.FindStringSubmatch(p.Pattern)
		if m == nil {
			t.Fatalf("Deployment pattern %q has no hash class", p.Pattern)
		}
		class := regexp.MustCompile("^[" + m[1] + "]$")
		for c := range 128 {
			s := string(rune(c))
			in := regexp.MustCompile("[" + regexp.QuoteMeta(encoded) + "]").MatchString(s)
			if class.MatchString(s) != in {
				t.Errorf("hash class [%s] and SafeEncodeString's digits %q disagree on %q", m[1], encoded, s)
			}
		}
	}
}

// TestDefaultPatternsResiduals pins what names alone cannot tell apart, as the README says: the
// same <name>-<5 characters> shape for a ReplicaSet and a DaemonSet or Job of the same name, a bare
// ReplicaSet named like a Deployment's, a generated suffix of digits beside a StatefulSet, and no
// match at all for pods whose generated names Kubernetes truncated.
func TestDefaultPatternsResiduals(t *testing.T) {
	cfg, err := metricsconfig.Load(KapacityDefault())
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]string{}
	for _, p := range cfg.WorkloadPodNamePatterns {
		patterns[p.Kind] = p.Pattern
	}
	longName := "checkout-service-with-a-rather-long-descriptive-name" // 52 characters
	longPod := (longName + "-5d8f7c9b6-")[:58] + "x2k4p"               // names.SimpleNameGenerator's truncation
	for _, tc := range []struct {
		kind, name, pod string
		match           bool
		why             string
	}{
		{"ReplicaSet", "web", "web-x2k4p", true, "a DaemonSet or Job web's pod has a ReplicaSet web's shape"},
		{"Deployment", "web", "web-bcd-x2k4p", true, "a bare ReplicaSet web-bcd's pod has a Deployment web's shape"},
		{"StatefulSet", "web", "web-24567", true, "a generated suffix of digits is an ordinal"},
		{"Deployment", longName, longPod, false, "a truncated name lost its hash"},
	} {
		re, err := metricsconfig.CompilePodNamePattern(patterns[tc.kind], tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if re.MatchString(tc.pod) != tc.match {
			t.Errorf("%s %s vs %s: match=%v, want %v (%s)", tc.kind, tc.name, tc.pod, !tc.match, tc.match, tc.why)
		}
	}
}
