package promql

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestNameMatchersSmallListsUnchanged(t *testing.T) {
	tests := []struct {
		names []string
		want  []string
	}{
		{names: nil, want: nil},
		{names: []string{"web-1"}, want: []string{`pod="web-1"`}},
		// Order kept, as in prometheus-adapter (conformance case 15).
		{names: []string{"somepod2", "somepod1"}, want: []string{`pod=~"somepod2|somepod1"`}},
		{names: []string{"a.b", "c"}, want: []string{`pod=~"a\\.b|c"`}},
	}
	for _, tc := range tests {
		var got []string
		for _, m := range NameMatchers("pod", tc.names, 0) {
			got = append(got, m.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("NameMatchers(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
}

func TestNameMatchersFactorsPrefixes(t *testing.T) {
	names := []string{"web-7d9f-def", "web-7d9f-abc", "api-1", "x"}
	ms := NameMatchers("pod", names, 27)
	var got []string
	for _, m := range ms {
		got = append(got, m.Value)
	}
	want := []string{`api-1|web-7d9f-(?:abc|def)`, `x`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// podNames returns n pod names spread over a few ReplicaSets, like a large
// Deployment during a rollout.
func podNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("checkout-service-%d8f9c7b6d-%05x", i%3, i*7919)
	}
	return names
}

func TestNameMatchersBatchesLargeLists(t *testing.T) {
	for _, limit := range []int{0, 1024, 300} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			names := podNames(3000)
			ms := NameMatchers("pod", names, limit)
			max := limit
			if max <= 0 {
				max = DefaultMaxRegexBytes
			}
			plain := escapedLen(RegexAlternation(names))
			total := 0
			matchedBy := map[string]int{}
			for i, m := range ms {
				if m.Name != "pod" || m.Type != MatchRegexp {
					t.Fatalf("unexpected matcher %+v", m)
				}
				if err := m.Validate(); err != nil {
					t.Fatal(err)
				}
				size := len(EscapeForStringLiteral(m.Value))
				if size > max {
					t.Errorf("batch %d is %d bytes, over the %d limit", i, size, max)
				}
				total += size
				re := regexp.MustCompile("^(?:" + m.Value + ")$")
				for _, n := range names {
					if re.MatchString(n) {
						matchedBy[n]++
					}
				}
				if re.MatchString("checkout-service-08f9c7b6d-zzzzz") || re.MatchString("other") {
					t.Errorf("batch %d matches a pod that was not asked for", i)
				}
			}
			for _, n := range names {
				if matchedBy[n] != 1 {
					t.Errorf("%s is matched by %d batches, want exactly 1", n, matchedBy[n])
				}
			}
			// Factoring must pay off: well under the plain alternation.
			if total*2 > plain {
				t.Errorf("factored size %d is not under half the plain size %d", total, plain)
			}
		})
	}
}

func TestNameMatchersOversizedName(t *testing.T) {
	long := strings.Repeat("a", 100)
	ms := NameMatchers("pod", []string{long, "b", "c"}, 50)
	var got []string
	for _, m := range ms {
		got = append(got, m.Value)
	}
	want := []string{long, "b|c"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func BenchmarkNameMatchers(b *testing.B) {
	names := podNames(5000)
	for b.Loop() {
		NameMatchers("pod", names, 0)
	}
}
