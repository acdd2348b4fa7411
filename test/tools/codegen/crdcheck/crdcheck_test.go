// Package crdcheck checks the generated CRD manifests with the API server's own code: that the API
// server would accept the CRDs (structural schema, defaults, CEL rules within their cost budget),
// and that the documentation samples pass the schema, its defaults and its CEL rules unchanged while
// the mistakes the CEL rules exist for are rejected.
//
// It lives in the codegen tools module because it needs k8s.io/apiextensions-apiserver, which the
// product module has no other use for. Run it with `go test ./crdcheck` from test/tools/codegen after
// generate.sh.
package crdcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

const (
	crdDir     = "../../../../deploy/crds"
	samplesDir = "../../../../deploy/examples/quickstart"
)

// crd is one loaded CRD with what is needed to validate its objects.
type crd struct {
	internal   *apiextensions.CustomResourceDefinition
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

func loadCRDs(t *testing.T) map[string]*crd {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "autoscaling.kapacitystack.io_*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("want 3 CRDs in %s (run generate.sh), found %d", crdDir, len(files))
	}
	crds := map[string]*crd{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		v1 := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, v1); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(v1)
		internal := &apiextensions.CustomResourceDefinition{}
		if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(v1, internal, nil); err != nil {
			t.Fatalf("%s: convert: %v", file, err)
		}
		// The API server records the storage version on create; validation expects it.
		internal.Status.StoredVersions = []string{v1.Spec.Versions[0].Name}
		if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
			t.Errorf("%s: the API server would reject this CRD:\n%v", filepath.Base(file), errs.ToAggregate())
			continue
		}
		// Conversion moves a schema shared by every version to spec.validation.
		schema := internal.Spec.Validation.OpenAPIV3Schema
		if v := internal.Spec.Versions[0].Schema; v != nil {
			schema = v.OpenAPIV3Schema
		}
		structural, err := structuralschema.NewStructural(schema)
		if err != nil {
			t.Fatalf("%s: structural schema: %v", file, err)
		}
		validator, _, err := apiservervalidation.NewSchemaValidator(schema)
		if err != nil {
			t.Fatalf("%s: schema validator: %v", file, err)
		}
		crds[v1.Spec.Names.Kind] = &crd{
			internal:   internal,
			structural: structural,
			validator:  validator,
			cel:        cel.NewValidator(structural, true, celconfig.PerCallLimit),
		}
	}
	return crds
}

// admit runs what the API server runs on a create (old == nil) or an update of a custom resource:
// drop nulls, apply defaults, prune unknown fields, then validate with the schema and the CEL rules.
// It returns the validation errors and the fields that pruning would have dropped.
func (c *crd) admit(t *testing.T, obj, old map[string]any) (field.ErrorList, []string) {
	t.Helper()
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, c.structural)
	structuraldefaulting.Default(obj, c.structural)
	pruned := pruning.PruneWithOptions(obj, c.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	errs := apiservervalidation.ValidateCustomResource(nil, obj, c.validator)
	var oldObj any
	if old != nil {
		structuraldefaulting.Default(old, c.structural)
		oldObj = old
	}
	celErrs, _ := c.cel.Validate(context.Background(), nil, c.structural, obj, oldObj, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...), pruned
}

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	// apimachinery's json keeps integers as int64, as the API server's decoder does.
	if err := json.Unmarshal(js, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestSamplesAreAccepted(t *testing.T) {
	crds := loadCRDs(t)
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", samplesDir, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			obj := decode(t, raw)
			c := crds[obj["kind"].(string)]
			if c == nil {
				t.Fatalf("no CRD for kind %v", obj["kind"])
			}
			errs, pruned := c.admit(t, obj, nil)
			if len(pruned) > 0 {
				t.Errorf("the API server would drop unknown fields: %v", pruned)
			}
			if len(errs) > 0 {
				t.Errorf("rejected:\n%v", errs.ToAggregate())
			}
		})
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	crds := loadCRDs(t)
	obj := decode(t, []byte(`
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: ReplicaProfile
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
`))
	if errs, _ := crds["ReplicaProfile"].admit(t, obj, nil); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	out, _ := yaml.Marshal(obj["spec"])
	want := "allowedScalingDirection: Both\nbehavior:\n  podSorter:\n    type: WorkloadDefault\n  podTrafficController:\n    type: ReadinessGate\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("defaulted spec:\n%s\nwant it to contain:\n%s", out, want)
	}
}

// TestBurstDefaultsAreApplied: an empty burst block gets the documented defaults, and a full one is
// accepted.
func TestBurstDefaultsAreApplied(t *testing.T) {
	crds := loadCRDs(t)
	obj := decode(t, []byte(`
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: IntelligentHorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 10
  portraitProviders:
  - {type: Static, priority: 0, static: {replicas: 1}}
`+burstProvider("Burst", "{}")+burstProvider("Burst", "{syncPeriod: 5s, sampleInterval: 2s, startupDelay: 30s, margin: '0.2', podCapacity: '12'}")))
	if errs, _ := crds["IntelligentHorizontalPodAutoscaler"].admit(t, obj, nil); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	out, _ := yaml.Marshal(obj["spec"].(map[string]any)["portraitProviders"].([]any)[1])
	want := "burst:\n      margin: \"0.1\"\n      sampleInterval: 15s\n      startupDelay: 1m\n      syncPeriod: 15s\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("defaulted provider:\n%s\nwant it to contain:\n%s", out, want)
	}
}

func TestCELRulesRejectMistakes(t *testing.T) {
	crds := loadCRDs(t)
	const ihpa = `
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: IntelligentHorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 10
  portraitProviders:
  - {type: Static, priority: 0, static: {replicas: 1}}
`
	cases := []struct {
		name, kind, doc, old string
		wantField, wantMsg   string
	}{
		{
			name: "min above max", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       strings.Replace(ihpa, "minReplicas: 1", "minReplicas: 11", 1),
			wantField: "spec.maxReplicas", wantMsg: "raise spec.maxReplicas or lower spec.minReplicas",
		},
		{
			name: "provider type without its block", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       strings.Replace(ihpa, "static: {replicas: 1}", "cron: {crons: [{name: a, start: '0 8 * * *', end: '0 9 * * *', replicas: 1}]}", 1),
			wantField: "spec.portraitProviders[0].static", wantMsg: "static must be set when type is Static",
		},
		{
			name: "cron start equals end", kind: "IntelligentHorizontalPodAutoscaler",
			doc: ihpa + `  - type: Cron
    priority: 1
    cron: {crons: [{name: a, start: '0 8 * * *', end: '0 8 * * *', replicas: 1}]}
`,
			wantField: "spec.portraitProviders[1].cron.crons[0].end", wantMsg: "start and end must differ",
		},
		{
			name: "scale-up gray state", kind: "IntelligentHorizontalPodAutoscaler",
			doc: ihpa + `  behavior:
    scaleUp:
      grayStrategy: {grayState: Cutoff, changeIntervalSeconds: 30, changePercent: 50}
`,
			wantField: "spec.behavior.scaleUp.grayStrategy.grayState", wantMsg: "must be Online",
		},
		{
			name: "stability checker without metrics", kind: "IntelligentHorizontalPodAutoscaler",
			doc: ihpa + `  stabilityCheckers:
  - {type: Metrics, stabilizationAction: Rollback}
`,
			wantField: "spec.stabilityCheckers[0].metrics", wantMsg: "metrics must be set when type is Metrics",
		},
		{
			name: "replica profile target change", kind: "ReplicaProfile",
			old: `
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: ReplicaProfile
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
`,
			doc: `
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: ReplicaProfile
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
`,
			wantField: "spec.scaleTargetRef", wantMsg: "scaleTargetRef is immutable",
		},
		{
			name: "autoscaler target change", kind: "IntelligentHorizontalPodAutoscaler",
			old:       ihpa,
			doc:       strings.Replace(ihpa, "name: web}\n  minReplicas", "name: api}\n  minReplicas", 1),
			wantField: "spec.scaleTargetRef", wantMsg: "scaleTargetRef is immutable: delete the autoscaler",
		},
		{
			name: "too many cron rules in all", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       ihpa + cronProviders(3, 30),
			wantField: "spec.portraitProviders", wantMsg: "at most 64 cron rules in all",
		},
		{
			name: "cron name too long", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       ihpa + "  - {type: Cron, priority: 1, cron: {crons: [{name: " + strings.Repeat("n", 254) + ", start: '0 8 * * *', end: '0 9 * * *', replicas: 1}]}}\n",
			wantField: "spec.portraitProviders[1].cron.crons[0].name", wantMsg: "may not be more than 253 bytes",
		},
		{
			name: "time series out of order", kind: "HorizontalPortrait",
			doc: `
apiVersion: autoscaling.kapacitystack.io/v1alpha1
kind: HorizontalPortrait
metadata: {name: web-predictive}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  portraitType: Predictive
  algorithm: {type: Prophet}
status:
  portraitData:
    type: TimeSeries
    timeSeries: {timeSeries: [{timestamp: 200, replicas: 1}, {timestamp: 100, replicas: 2}]}
`,
			wantField: "status.portraitData.timeSeries.timeSeries", wantMsg: "timeSeries must be sorted by timestamp",
		},
		{
			name: "burst sample interval too short", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       ihpa + burstProvider("Burst", "{sampleInterval: 100ms}"),
			wantField: "spec.portraitProviders[1].dynamic.algorithm.burst.sampleInterval", wantMsg: "between 1s and 10m",
		},
		{
			name: "burst sync period too long", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       ihpa + burstProvider("Burst", "{syncPeriod: 2h}"),
			wantField: "spec.portraitProviders[1].dynamic.algorithm.burst.syncPeriod", wantMsg: "between 1s and 1h",
		},
		{
			name: "burst start-up delay of zero", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       ihpa + burstProvider("Burst", "{startupDelay: 0s}"),
			wantField: "spec.portraitProviders[1].dynamic.algorithm.burst.startupDelay", wantMsg: "between 1s and 1h",
		},
		{
			name: "burst algorithm for a reactive portrait", kind: "IntelligentHorizontalPodAutoscaler",
			doc:       ihpa + burstProvider("Reactive", "{}"),
			wantField: "spec.portraitProviders[1].dynamic.portraitType", wantMsg: "set portraitType to Burst",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var old map[string]any
			if tc.old != "" {
				old = decode(t, []byte(tc.old))
			}
			errs, _ := crds[tc.kind].admit(t, decode(t, []byte(tc.doc)), old)
			if len(errs) != 1 || errs[0].Field != tc.wantField || !strings.Contains(errs[0].Error(), tc.wantMsg) {
				t.Fatalf("got %v, want one error on %s containing %q", errs.ToAggregate(), tc.wantField, tc.wantMsg)
			}
		})
	}
}

// burstProvider is YAML for a Dynamic provider of portraitType with the Burst algorithm and its
// burst block, appended to the providers of an IHPA document.
func burstProvider(portraitType, block string) string {
	return `  - type: Dynamic
    priority: 0
    dynamic:
      portraitType: ` + portraitType + `
      metrics:
      - type: External
        external:
          metric: {name: requests_per_second}
          target: {type: AverageValue, averageValue: "10"}
      algorithm: {type: Burst, burst: ` + block + `}
`
}

// cronProviders is YAML for n Cron providers of perProvider rules each, appended to the providers
// of an IHPA document.
func cronProviders(n, perProvider int) string {
	var b strings.Builder
	for p := 0; p < n; p++ {
		fmt.Fprintf(&b, "  - type: Cron\n    priority: %d\n    cron:\n      crons:\n", p+1)
		for i := 0; i < perProvider; i++ {
			fmt.Fprintf(&b, "      - {name: c%d, start: '%d 8 * * *', end: '%d 9 * * *', replicas: 1}\n", i, i, i)
		}
	}
	return b.String()
}
