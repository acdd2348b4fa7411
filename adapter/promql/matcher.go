// Package promql builds the label-matcher part of PromQL queries and renders
// metrics-query templates. It is the single place where strings from
// requests (label selectors, object names, namespaces) become PromQL, so it
// escapes everything it emits: values are PromQL string literals, values in
// regex alternations are regex-quoted, and label names are checked against
// Prometheus' grammar. Nothing untrusted reaches a query unescaped.
package promql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MatchType is a PromQL label-matching operator.
type MatchType int

const (
	MatchEqual MatchType = iota
	MatchNotEqual
	MatchRegexp
	MatchNotRegexp
)

// String returns the PromQL operator.
func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	default:
		return fmt.Sprintf("MatchType(%d)", int(t))
	}
}

// IsRegexp reports whether the operator takes a regular expression.
func (t MatchType) IsRegexp() bool { return t == MatchRegexp || t == MatchNotRegexp }

// Matcher is one PromQL label matcher. For the regex operators Value is a
// regular expression and is used as such: build it with RegexAlternation
// when it comes from plain values.
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
}

var (
	labelNamePattern  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	metricNamePattern = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
)

// IsValidLabelName reports whether name can appear unquoted in PromQL.
func IsValidLabelName(name string) bool { return labelNamePattern.MatchString(name) }

// IsValidMetricName reports whether name can appear unquoted in PromQL as a
// metric name.
func IsValidMetricName(name string) bool { return metricNamePattern.MatchString(name) }

// Validate checks that the matcher can be rendered safely and that
// Prometheus would accept it.
func (m Matcher) Validate() error {
	if !IsValidLabelName(m.Name) {
		return fmt.Errorf("label name %q is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)", m.Name)
	}
	if m.Type < MatchEqual || m.Type > MatchNotRegexp {
		return fmt.Errorf("label %q: unknown match type %d", m.Name, int(m.Type))
	}
	if !utf8.ValidString(m.Value) {
		return fmt.Errorf("label %q: value is not valid UTF-8", m.Name)
	}
	if m.Type.IsRegexp() {
		if _, err := regexp.Compile("^(?:" + m.Value + ")$"); err != nil {
			return fmt.Errorf("label %q: invalid regular expression: %w", m.Name, err)
		}
	}
	return nil
}

// String renders the matcher, e.g. `pod=~"a|b"`. It does not validate; use
// RenderMatchers for anything that goes into a query.
func (m Matcher) String() string {
	return m.Name + m.Type.String() + Quote(m.Value)
}

// RenderMatchers validates the matchers and joins them with "," (no
// spaces), the form templates receive as .LabelMatchers.
func RenderMatchers(matchers []Matcher) (string, error) {
	parts := make([]string, 0, len(matchers))
	for _, m := range matchers {
		if err := m.Validate(); err != nil {
			return "", err
		}
		parts = append(parts, m.String())
	}
	return strings.Join(parts, ","), nil
}

// Quote returns s as a PromQL double-quoted string literal. PromQL string
// literals use Go's escape sequences, so strconv.Quote is exact.
func Quote(s string) string { return strconv.Quote(s) }

// EscapeForStringLiteral returns s escaped for use between double quotes in
// PromQL, i.e. Quote without the surrounding quotes. Templates that embed
// .LabelValuesByName in their own literal rely on it.
func EscapeForStringLiteral(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// RegexAlternation returns a regular expression matching exactly the given
// values, each regex-quoted, joined with "|" in the order given.
func RegexAlternation(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(quoted, "|")
}
