package promql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// parsedMatcher is a matcher read back from rendered PromQL.
type parsedMatcher struct {
	name, op, value string
}

// parseMatcherList reads `name op "literal"` items separated by ",", the
// grammar of a PromQL label-matcher list, and fails on anything else. The
// prometheus/prometheus parser would pull in a large dependency tree for
// this one check; PromQL string literals follow Go's escaping, so
// strconv.Unquote decodes them exactly as the PromQL lexer does.
func parseMatcherList(s string) ([]parsedMatcher, error) {
	var out []parsedMatcher
	for pos := 0; pos < len(s); {
		if len(out) > 0 {
			if s[pos] != ',' {
				return nil, fmt.Errorf("expected ',' at %d in %q", pos, s)
			}
			pos++
		}
		start := pos
		for pos < len(s) && (s[pos] == '_' || s[pos] >= 'a' && s[pos] <= 'z' || s[pos] >= 'A' && s[pos] <= 'Z' || pos > start && s[pos] >= '0' && s[pos] <= '9') {
			pos++
		}
		if pos == start {
			return nil, fmt.Errorf("expected a label name at %d in %q", pos, s)
		}
		name := s[start:pos]
		var op string
		for _, candidate := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(s[pos:], candidate) {
				op = candidate
				break
			}
		}
		if op == "" {
			return nil, fmt.Errorf("expected an operator at %d in %q", pos, s)
		}
		pos += len(op)
		if pos >= len(s) || s[pos] != '"' {
			return nil, fmt.Errorf("expected a string literal at %d in %q", pos, s)
		}
		end := pos + 1
		for ; end < len(s) && s[end] != '"'; end++ {
			if s[end] == '\\' {
				end++
			}
		}
		if end >= len(s) {
			return nil, fmt.Errorf("unterminated string literal at %d in %q", pos, s)
		}
		value, err := strconv.Unquote(s[pos : end+1])
		if err != nil {
			return nil, fmt.Errorf("malformed string literal %s: %w", s[pos:end+1], err)
		}
		out = append(out, parsedMatcher{name: name, op: op, value: value})
		pos = end + 1
	}
	return out, nil
}

var fuzzOperators = []selection.Operator{
	selection.Equals, selection.DoubleEquals, selection.NotEquals, selection.In,
	selection.NotIn, selection.Exists, selection.DoesNotExist, selection.GreaterThan,
	selection.LessThan, "bogus",
}

// FuzzSelectorToPromQL checks that no label selector can inject PromQL:
// whatever the input, conversion either fails or yields matchers that read
// back as exactly the intended label names, operators and values, with
// regex alternations matching every requested value literally.
func FuzzSelectorToPromQL(f *testing.F) {
	seeds := []struct {
		raw, key string
		op       uint8
		v1, v2   string
	}{
		{"topic in (b,a),queue=q1", "pod", 3, "web-1", "web-2"},
		{"foo,!bar,baz notin (x,y),qux!=z", "k", 0, `a"b\c`, ""},
		{"foo>3", "k", 3, `"}) or vector(1) #`, "a.b|c"},
		{"", "k", 4, ".*", "\n"},
		{"a=b", "app.kubernetes.io/name", 0, "x", ""},
		{"x in (a.b)", "k", 2, "\x00\u2028", "é"},
		{"k=\xff", "k", 0, "\xff", "ok"},
	}
	for _, s := range seeds {
		f.Add(s.raw, s.key, s.op, s.v1, s.v2)
	}
	f.Fuzz(func(t *testing.T, raw, key string, op uint8, v1, v2 string) {
		if sel, err := labels.Parse(raw); err == nil {
			checkSelector(t, sel)
		}
		var values []string
		for _, v := range []string{v1, v2} {
			if v != "" {
				values = append(values, v)
			}
		}
		// NewRequirement reports validation errors but still returns the
		// requirement; code that ignores the error must stay safe.
		req, _ := labels.NewRequirement(key, fuzzOperators[int(op)%len(fuzzOperators)], values)
		checkSelector(t, labels.NewSelector().Add(*req))
	})
}

func checkSelector(t *testing.T, sel labels.Selector) {
	t.Helper()
	ms, err := MatchersForSelector(sel)
	if err != nil {
		return
	}
	rendered, err := RenderMatchers(ms)
	if err != nil {
		t.Fatalf("converted matchers do not render: %v", err)
	}
	parsed, err := parseMatcherList(rendered)
	if err != nil {
		t.Fatalf("rendered matchers are not well-formed PromQL: %v", err)
	}
	if len(parsed) != len(ms) {
		t.Fatalf("%q reads back as %d matchers, want %d", rendered, len(parsed), len(ms))
	}
	reqs, _ := sel.Requirements()
	for i, p := range parsed {
		m := ms[i]
		if p.name != m.Name || p.op != m.Type.String() || p.value != m.Value {
			t.Fatalf("matcher %d reads back as %+v, want %+v", i, p, m)
		}
		if !IsValidLabelName(p.name) {
			t.Fatalf("invalid label name %q rendered", p.name)
		}
		if !utf8.ValidString(p.value) {
			t.Fatalf("invalid UTF-8 value %q rendered", p.value)
		}
		req := reqs[i]
		if p.name != req.Key() {
			t.Fatalf("matcher %d is for label %q, want %q", i, p.name, req.Key())
		}
		if m.Type.IsRegexp() {
			re, err := regexp.Compile("^(?:" + p.value + ")$")
			if err != nil {
				t.Fatalf("regex %q does not compile: %v", p.value, err)
			}
			for _, v := range req.Values().List() {
				if !re.MatchString(v) {
					t.Fatalf("regex %q does not match requested value %q", p.value, v)
				}
			}
			if re.NumSubexp() != 0 {
				t.Fatalf("regex %q from plain values has groups: a value was not quoted", p.value)
			}
		} else if req.Values().Len() == 1 && p.value != req.Values().List()[0] {
			t.Fatalf("value %q reads back as %q", req.Values().List()[0], p.value)
		}
	}
}
