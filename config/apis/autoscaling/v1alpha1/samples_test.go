package v1alpha1

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// quickStartDir holds Kapacity's quick-start samples, where users copy them from.
var quickStartDir = filepath.Join("..", "..", "..", "..", "deploy", "examples", "quickstart")

// The samples in deploy/examples/quickstart are the Kapacity documentation's own (see its README.md); users apply
// them unchanged, so they must decode with unknown fields rejected and pass validation.
func TestSeedSamplesDecodeStrictlyAndValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(quickStartDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("want the 5 documentation samples in deploy/examples/quickstart, found %d: %v", len(files), files)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(raw, &meta); err != nil {
				t.Fatalf("read kind: %v", err)
			}
			if meta.APIVersion != GroupVersion.String() {
				t.Fatalf("apiVersion = %q, want %q", meta.APIVersion, GroupVersion)
			}
			var (
				obj  any
				errs field.ErrorList
			)
			switch meta.Kind {
			case "IntelligentHorizontalPodAutoscaler":
				ihpa := &IntelligentHorizontalPodAutoscaler{}
				strictDecode(t, raw, ihpa)
				ihpa.Default()
				errs, obj = ihpa.Validate(), ihpa
			case "HorizontalPortrait":
				hp := &HorizontalPortrait{}
				strictDecode(t, raw, hp)
				hp.Default()
				// The documentation elides this portrait's spec, so only its status is checked.
				if hp.Status.PortraitData == nil {
					t.Fatal("status.portraitData missing")
				}
				errs, obj = hp.Status.PortraitData.Validate(field.NewPath("status", "portraitData")), hp
			case "ReplicaProfile":
				rp := &ReplicaProfile{}
				strictDecode(t, raw, rp)
				rp.Default()
				errs, obj = rp.Validate(), rp
			default:
				t.Fatalf("unexpected kind %q", meta.Kind)
			}
			if len(errs) > 0 {
				t.Fatalf("sample does not validate:\n%v", errs.ToAggregate())
			}

			// Encoding and decoding again must give the same object: no field may be lost to
			// omitempty/omitzero or renamed on the way out.
			out, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			again := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
			strictDecode(t, out, again)
			if !reflect.DeepEqual(obj, again) {
				t.Fatalf("round trip changed the object:\n%s", out)
			}
		})
	}
}

func strictDecode(t *testing.T, raw []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		t.Fatalf("strict decode: %v", err)
	}
}

// TestSeedSamplesVerbatim proves that the samples are the documentation's text: once indentation and
// the file header are dropped, each is a run of consecutive lines of the seed document. The seed lives
// outside the repository, so the test is skipped when it is not beside it.
func TestSeedSamplesVerbatim(t *testing.T) {
	seed := findSeed(t)
	if seed == "" {
		t.Skip("shared/seeds/001_*.txt not found beside the repository")
	}
	raw, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	seedLines := strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n")

	files, err := filepath.Glob(filepath.Join(quickStartDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			content, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			header := true
			sc := bufio.NewScanner(bytes.NewReader(content))
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if header && strings.HasPrefix(line, "#") {
					continue
				}
				header = false
				if line == "# ..." {
					line = "..."
				}
				lines = append(lines, line)
			}
			if !containsRun(seedLines, lines) {
				t.Fatalf("the sample's lines are not a run of lines of %s", seed)
			}
		})
	}
}

func findSeed(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		matches, _ := filepath.Glob(filepath.Join(dir, "shared", "seeds", "001_*.txt"))
		if len(matches) == 1 {
			return matches[0]
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func containsRun(haystack, run []string) bool {
	for start := range haystack {
		if start+len(run) > len(haystack) {
			return false
		}
		match := true
		for i, line := range run {
			if strings.TrimSpace(haystack[start+i]) != line {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
