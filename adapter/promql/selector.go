package promql

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Errors for label requirements PromQL cannot express. They are wrapped
// with the label name; test with errors.Is.
var (
	ErrUnsupportedOperator    = errors.New("operator not supported by prometheus")
	ErrMalformedQuery         = errors.New("operator requires at least one value")
	ErrQueryUnsupportedValues = errors.New("operator does not accept values")
	ErrLabelNotSpecified      = errors.New("label not specified")
)

// MatchersForSelector converts a Kubernetes label selector into PromQL
// matchers, in the selector's order (sorted by key). A nil selector means
// everything. Any requirement PromQL cannot express fails the whole
// conversion: silently dropping it would widen the query.
//
// Unlike prometheus-adapter, values are never passed through as regular
// expressions: `in`/`notin` and multi-valued requirements become regex
// alternations of regex-quoted values, so `pod in (a.b)` matches only "a.b".
func MatchersForSelector(sel labels.Selector) ([]Matcher, error) {
	if sel == nil {
		return nil, nil
	}
	reqs, _ := sel.Requirements()
	matchers := make([]Matcher, 0, len(reqs))
	for _, r := range reqs {
		m, err := MatcherForRequirement(&r)
		if err != nil {
			return nil, err
		}
		matchers = append(matchers, m)
	}
	return matchers, nil
}

// MatcherForRequirement converts one label requirement.
func MatcherForRequirement(r *labels.Requirement) (Matcher, error) {
	key := r.Key()
	if key == "" {
		return Matcher{}, ErrLabelNotSpecified
	}
	// Sorted and de-duplicated, so that equal selectors give equal queries.
	values := r.Values().List()

	var m Matcher
	switch op := r.Operator(); op {
	case selection.Equals, selection.DoubleEquals:
		m = valueMatcher(key, values, MatchEqual, MatchRegexp)
	case selection.NotEquals:
		m = valueMatcher(key, values, MatchNotEqual, MatchNotRegexp)
	case selection.In:
		m = Matcher{Name: key, Type: MatchRegexp, Value: RegexAlternation(values)}
	case selection.NotIn:
		m = Matcher{Name: key, Type: MatchNotRegexp, Value: RegexAlternation(values)}
	case selection.Exists:
		if len(values) != 0 {
			return Matcher{}, fmt.Errorf("label %q: %w", key, ErrQueryUnsupportedValues)
		}
		return checked(Matcher{Name: key, Type: MatchNotEqual, Value: ""})
	case selection.DoesNotExist:
		if len(values) != 0 {
			return Matcher{}, fmt.Errorf("label %q: %w", key, ErrQueryUnsupportedValues)
		}
		return checked(Matcher{Name: key, Type: MatchEqual, Value: ""})
	default:
		return Matcher{}, fmt.Errorf("label %q: operator %q: %w", key, op, ErrUnsupportedOperator)
	}
	if len(values) == 0 {
		return Matcher{}, fmt.Errorf("label %q: %w", key, ErrMalformedQuery)
	}
	return checked(m)
}

func checked(m Matcher) (Matcher, error) {
	if err := m.Validate(); err != nil {
		return Matcher{}, err
	}
	return m, nil
}

// valueMatcher matches one value literally and several by alternation.
func valueMatcher(key string, values []string, single, multi MatchType) Matcher {
	if len(values) == 1 {
		return Matcher{Name: key, Type: single, Value: values[0]}
	}
	return Matcher{Name: key, Type: multi, Value: RegexAlternation(values)}
}

// ValuesByName returns, for each label the selector requires to equal one
// of a set of values (=, ==, in), the regex alternation of those values
// escaped for use inside a PromQL string literal. It feeds the templates'
// .LabelValuesByName.
func ValuesByName(sel labels.Selector) map[string]string {
	out := map[string]string{}
	if sel == nil {
		return out
	}
	reqs, _ := sel.Requirements()
	for i := range reqs {
		switch reqs[i].Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			out[reqs[i].Key()] = EscapeForStringLiteral(RegexAlternation(reqs[i].Values().List()))
		}
	}
	return out
}

// ValueForMatcher returns the .LabelValuesByName entry for a positive
// matcher (= or =~) and false for any other.
func ValueForMatcher(m Matcher) (string, bool) {
	switch m.Type {
	case MatchEqual:
		return EscapeForStringLiteral(RegexAlternation([]string{m.Value})), true
	case MatchRegexp:
		return EscapeForStringLiteral(m.Value), true
	default:
		return "", false
	}
}
