package promql

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

func TestMatchersForSelector(t *testing.T) {
	tests := []struct {
		name     string
		selector string
		want     string
		wantErr  error  // checked with errors.Is when set
		errText  string // substring of the error when set
	}{
		// Conformance case 24: requirements sorted by key, values sorted.
		{name: "in and equals", selector: "topic in (b,a),queue=q1", want: `queue="q1",topic=~"a|b"`},
		// Conformance case 25.
		{name: "exists", selector: "foo", want: `foo!=""`},
		{name: "does not exist", selector: "!foo", want: `foo=""`},
		{name: "notin one", selector: "foo notin (x)", want: `foo!~"x"`},
		{name: "notin two", selector: "foo notin (x,y)", want: `foo!~"x|y"`},
		{name: "not equals", selector: "foo!=x", want: `foo!="x"`},
		{name: "double equals", selector: "foo==x", want: `foo="x"`},
		{name: "in one", selector: "foo in (x)", want: `foo=~"x"`},
		{name: "greater than", selector: "foo>3", wantErr: ErrUnsupportedOperator, errText: `label "foo": operator "gt": operator not supported by prometheus`},
		{name: "less than", selector: "foo<3", wantErr: ErrUnsupportedOperator},
		{name: "everything", selector: "", want: ""},
		// Values in alternations are regex-quoted: "a.b" matches only itself.
		{name: "regex metacharacters quoted", selector: "foo in (a.b,c-d)", want: `foo=~"a\\.b|c-d"`},
		{name: "equality value not regex-quoted", selector: "foo=a.b", want: `foo="a.b"`},
		{name: "kubernetes-style key", selector: "app.kubernetes.io/name=web", errText: `label name "app.kubernetes.io/name" is not a valid Prometheus label name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := labels.Parse(tc.selector)
			if err != nil {
				t.Fatalf("labels.Parse(%q): %v", tc.selector, err)
			}
			ms, err := MatchersForSelector(sel)
			if tc.wantErr != nil || tc.errText != "" {
				if err == nil {
					t.Fatalf("expected an error, got %v", ms)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v is not %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("error %q does not contain %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := RenderMatchers(ms)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// Requirements built in code skip the parser's validation (Kapacity builds
// some that way), so values can hold anything; they must still be escaped.
func TestMatcherForRequirementEscapes(t *testing.T) {
	tests := []struct {
		op      selection.Operator
		values  []string
		want    string
		wantErr error
	}{
		{op: selection.Equals, values: []string{"a\"b\\c\nd"}, want: `k="a\"b\\c\nd"`},
		{op: selection.Equals, values: []string{`"}) or vector(1) #`}, want: `k="\"}) or vector(1) #"`},
		{op: selection.In, values: []string{"c|d", "a.b"}, want: `k=~"a\\.b|c\\|d"`},
		{op: selection.NotIn, values: []string{".*"}, want: `k!~"\\.\\*"`},
		{op: selection.Equals, values: []string{"x", "y"}, want: `k=~"x|y"`},
		{op: selection.NotEquals, values: []string{"x", "y"}, want: `k!~"x|y"`},
		{op: selection.Equals, values: nil, wantErr: ErrMalformedQuery},
		{op: selection.In, values: nil, wantErr: ErrMalformedQuery},
		{op: selection.Exists, values: []string{"x"}, wantErr: ErrQueryUnsupportedValues},
		{op: selection.DoesNotExist, values: []string{"x"}, wantErr: ErrQueryUnsupportedValues},
		{op: selection.GreaterThan, values: []string{"1"}, wantErr: ErrUnsupportedOperator},
	}
	for _, tc := range tests {
		req, _ := labels.NewRequirement("k", tc.op, tc.values)
		m, err := MatcherForRequirement(req)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s %q: error %v, want %v", tc.op, tc.values, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", tc.op, tc.values, err)
			continue
		}
		if got := m.String(); got != tc.want {
			t.Errorf("%s %q: got %s, want %s", tc.op, tc.values, got, tc.want)
		}
	}

	req, _ := labels.NewRequirement("", selection.Exists, nil)
	if _, err := MatcherForRequirement(req); !errors.Is(err, ErrLabelNotSpecified) {
		t.Errorf("empty key: error %v, want %v", err, ErrLabelNotSpecified)
	}
	req, _ = labels.NewRequirement("k", selection.Equals, []string{"\xff"})
	if _, err := MatcherForRequirement(req); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("invalid UTF-8: error %v", err)
	}
}

func TestValuesByName(t *testing.T) {
	sel, err := labels.Parse(`a=x,b in (y.1,z),c!=w,d,e notin (v)`)
	if err != nil {
		t.Fatal(err)
	}
	got := ValuesByName(sel)
	want := map[string]string{"a": "x", "b": `y\\.1|z`}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
}

func TestRenderMatchersRejectsUnsafeInput(t *testing.T) {
	tests := []Matcher{
		{Name: `pod"} or up{x="`, Type: MatchEqual, Value: "a"},
		{Name: "", Type: MatchEqual, Value: "a"},
		{Name: "9pod", Type: MatchEqual, Value: "a"},
		{Name: "pod", Type: MatchRegexp, Value: "(a"},
		{Name: "pod", Type: MatchType(42), Value: "a"},
	}
	for _, m := range tests {
		if got, err := RenderMatchers([]Matcher{m}); err == nil {
			t.Errorf("%+v rendered as %s, want an error", m, got)
		}
	}
}
