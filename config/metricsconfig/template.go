package metricsconfig

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// Templates in the config use << >> as delimiters so that PromQL braces and
// Go template actions never collide.
const (
	TemplateLeftDelim  = "<<"
	TemplateRightDelim = ">>"
)

// ParseQueryTemplate parses a metricsQuery / containerQuery / nodeQuery
// template, and checks that every field it names exists in QueryData.
func ParseQueryTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Delims(TemplateLeftDelim, TemplateRightDelim).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("unable to parse metrics query template %q: %w", text, err)
	}
	if err := checkFields(t.Tree); err != nil {
		return nil, err
	}
	return t, nil
}

// LabelTemplate is a compiled resources.template: it renders the label name
// for a group-resource and recognises label names of that form.
type LabelTemplate struct {
	text    string
	tmpl    *template.Template
	matcher *regexp.Regexp
}

// labelTemplateFields are the values a resources.template sees.
type labelTemplateFields struct {
	Group    string
	Resource string
}

// Sentinels mark where the fields land in a rendering so the literal text
// around them can be regex-escaped; NUL never appears in a template's text
// by accident.
const (
	groupSentinel    = "\x00group\x00"
	resourceSentinel = "\x00resource\x00"
)

// CompileLabelTemplate compiles a resources.template such as
// "kube_<<.Group>>_<<.Resource>>". The template must use .Resource, otherwise
// no resource could ever be recognised from a label name.
func CompileLabelTemplate(text string) (*LabelTemplate, error) {
	t, err := template.New("resource-label").Delims(TemplateLeftDelim, TemplateRightDelim).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("unable to parse label template %q: %w", text, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, labelTemplateFields{Group: groupSentinel, Resource: resourceSentinel}); err != nil {
		return nil, fmt.Errorf("unable to render label template %q: %w", text, err)
	}
	rendered := b.String()
	if rendered == "" {
		return nil, fmt.Errorf("label template %q renders an empty label name", text)
	}
	if !strings.Contains(rendered, resourceSentinel) {
		return nil, fmt.Errorf("must include at least `{{.Resource}}` in the label template")
	}
	pattern, err := sentinelsToPattern(rendered)
	if err != nil {
		return nil, fmt.Errorf("label template %q: %w", text, err)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("label template %q does not give a usable regular expression: %w", text, err)
	}
	return &LabelTemplate{text: text, tmpl: t, matcher: re}, nil
}

// sentinelsToPattern turns a sentinel rendering into an anchored regular
// expression: literal text is escaped, the first occurrence of each field
// becomes a named lazy group and later occurrences an unnamed one (RE2 has no
// back-references, and repeated group names are ambiguous).
func sentinelsToPattern(rendered string) (string, error) {
	var b strings.Builder
	b.WriteString("^")
	seen := map[string]bool{}
	rest := rendered
	for rest != "" {
		gi := strings.Index(rest, groupSentinel)
		ri := strings.Index(rest, resourceSentinel)
		next, sentinel, name := -1, "", ""
		switch {
		case gi >= 0 && (ri < 0 || gi < ri):
			next, sentinel, name = gi, groupSentinel, "group"
		case ri >= 0:
			next, sentinel, name = ri, resourceSentinel, "resource"
		}
		if next < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:next]))
		if seen[name] {
			b.WriteString("(?:.+?)")
		} else {
			fmt.Fprintf(&b, "(?P<%s>.+?)", name)
			seen[name] = true
		}
		rest = rest[next+len(sentinel):]
	}
	b.WriteString("$")
	if strings.Contains(b.String(), "\x00") {
		return "", fmt.Errorf("label template must not contain NUL characters")
	}
	return b.String(), nil
}

// String returns the template text.
func (t *LabelTemplate) String() string { return t.text }

// Render returns the label name for a group and (singular) resource.
func (t *LabelTemplate) Render(group, resource string) (string, error) {
	var b strings.Builder
	if err := t.tmpl.Execute(&b, labelTemplateFields{Group: group, Resource: resource}); err != nil {
		return "", fmt.Errorf("unable to render label template %q: %w", t.text, err)
	}
	return b.String(), nil
}

// Match reports whether label has the template's form and, if so, the group
// ("" when the template has no .Group) and resource it names.
func (t *LabelTemplate) Match(label string) (group, resource string, ok bool) {
	m := t.matcher.FindStringSubmatch(label)
	if m == nil {
		return "", "", false
	}
	if i := t.matcher.SubexpIndex("group"); i >= 0 {
		group = m[i]
	}
	return group, m[t.matcher.SubexpIndex("resource")], true
}
