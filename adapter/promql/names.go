package promql

import (
	"regexp"
	"sort"
	"strings"
)

// DefaultMaxRegexBytes bounds the escaped regex of one name matcher. It is
// well under the query-length limits of common back-ends (VictoriaMetrics'
// -search.maxQueryLen defaults to 16 KiB; URL limits of proxies are often
// 8–16 KiB for GET) while still holding a few hundred pod names.
const DefaultMaxRegexBytes = 8 << 10

// NameMatchers returns matchers selecting the series whose label equals one
// of names, split so that no matcher's escaped value exceeds maxBytes
// (DefaultMaxRegexBytes when maxBytes <= 0). The caller runs one query per
// matcher and merges the results; since every name lands in exactly one
// matcher, results never overlap as long as the query groups by label.
//
// Why batches and prefix factoring rather than one alternation: with 1000+
// pods a plain `pod=~"a|b|…"` exceeds back-end query-length limits
// (prometheus-adapter#668). When the plain alternation fits it is used
// unchanged (one name gives an equality matcher), so small requests produce
// the same queries as prometheus-adapter. Otherwise names are first factored
// by their prefix up to the last "-", which for pods is the workload and
// pod-template-hash part (`web-7d9f-(?:abc|def)`), roughly tripling how many
// pods fit in a batch, and the factored alternatives are then packed into as
// few batches as fit. A single name longer than maxBytes gets a batch of its
// own: it cannot be shortened, and dropping it would lose data.
func NameMatchers(label string, names []string, maxBytes int) []Matcher {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRegexBytes
	}
	switch len(names) {
	case 0:
		return nil
	case 1:
		return []Matcher{{Name: label, Type: MatchEqual, Value: names[0]}}
	}
	plain := RegexAlternation(names)
	if escapedLen(plain) <= maxBytes {
		return []Matcher{{Name: label, Type: MatchRegexp, Value: plain}}
	}
	var batches []Matcher
	for _, value := range packAlternatives(factorByPrefix(names), maxBytes) {
		batches = append(batches, Matcher{Name: label, Type: MatchRegexp, Value: value})
	}
	return batches
}

// nameGroup is a set of names sharing a prefix.
type nameGroup struct {
	prefix   string
	suffixes []string
}

// factorByPrefix groups the distinct names by their text up to and
// including the last "-", sorted for determinism.
func factorByPrefix(names []string) []nameGroup {
	unique := append([]string(nil), names...)
	sort.Strings(unique)
	var groups []nameGroup
	for i, n := range unique {
		if i > 0 && n == unique[i-1] {
			continue
		}
		prefix, suffix := "", n
		if cut := strings.LastIndexByte(n, '-'); cut > 0 && cut < len(n)-1 {
			prefix, suffix = n[:cut+1], n[cut+1:]
		}
		if len(groups) > 0 && prefix != "" && groups[len(groups)-1].prefix == prefix {
			last := &groups[len(groups)-1]
			last.suffixes = append(last.suffixes, suffix)
			continue
		}
		groups = append(groups, nameGroup{prefix: prefix, suffixes: []string{suffix}})
	}
	return groups
}

// render returns the regex matching the group's prefix followed by one of
// suffixes.
func (g nameGroup) render(suffixes []string) string {
	if len(suffixes) == 1 {
		return regexp.QuoteMeta(g.prefix + suffixes[0])
	}
	return regexp.QuoteMeta(g.prefix) + "(?:" + RegexAlternation(suffixes) + ")"
}

// packAlternatives packs groups into alternations of at most maxBytes
// escaped bytes, splitting a group across batches when it is too large.
func packAlternatives(groups []nameGroup, maxBytes int) []string {
	var (
		batches    []string
		current    strings.Builder
		currentLen int // escaped length of current, kept to avoid re-escaping
	)
	flush := func() {
		if current.Len() > 0 {
			batches = append(batches, current.String())
			current.Reset()
			currentLen = 0
		}
	}
	add := func(alt string) {
		altLen := escapedLen(alt)
		if current.Len() > 0 && currentLen+1+altLen > maxBytes {
			flush()
		}
		if current.Len() > 0 {
			current.WriteByte('|')
			currentLen++
		}
		current.WriteString(alt)
		currentLen += altLen
	}
	for _, g := range groups {
		if alt := g.render(g.suffixes); escapedLen(alt) <= maxBytes {
			add(alt)
			continue
		}
		// Too big for any batch: emit chunks of the group that fit.
		start := 0
		for start < len(g.suffixes) {
			end := start + 1
			for end < len(g.suffixes) && escapedLen(g.render(g.suffixes[start:end+1])) <= maxBytes {
				end++
			}
			add(g.render(g.suffixes[start:end]))
			start = end
		}
	}
	flush()
	return batches
}

// escapedLen is the length of s once written inside a PromQL string literal.
func escapedLen(s string) int { return len(EscapeForStringLiteral(s)) }
