package promql

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/kapacitystack/kapacity/config/metricsconfig"
)

// ErrEmptyQuery is returned when a template renders nothing.
var ErrEmptyQuery = errors.New("empty query produced by metrics query template")

// QueryData is what metrics-query templates see (defined with the config format, which
// checks templates against it when loading).
type QueryData = metricsconfig.QueryData

// QueryTemplate is a parsed metrics-query template (delimiters << >>).
type QueryTemplate struct {
	text string
	tmpl *template.Template
}

// ParseQueryTemplate parses a metricsQuery, containerQuery, nodeQuery or
// readyPodsOnlyContainerQuery.
func ParseQueryTemplate(name, text string) (*QueryTemplate, error) {
	t, err := metricsconfig.ParseQueryTemplate(name, text)
	if err != nil {
		return nil, err
	}
	return &QueryTemplate{text: text, tmpl: t}, nil
}

// String returns the template text.
func (t *QueryTemplate) String() string { return t.text }

// Execute renders the query.
func (t *QueryTemplate) Execute(data QueryData) (string, error) {
	var b strings.Builder
	if err := t.tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("unable to render metrics query template: %w", err)
	}
	if b.Len() == 0 {
		return "", ErrEmptyQuery
	}
	return b.String(), nil
}
