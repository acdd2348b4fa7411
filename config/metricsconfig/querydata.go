package metricsconfig

import (
	"fmt"
	"reflect"
	"strings"
	"text/template/parse"
)

// QueryData is what metrics-query templates (metricsQuery, containerQuery, nodeQuery,
// readyPodsOnlyContainerQuery) see. Field names are part of the config format
// (prometheus-adapter's), so they must not change; adapter/promql fills it in.
type QueryData struct {
	// Series is the Prometheus series (metric) name.
	Series string
	// LabelMatchers is the comma-joined, escaped matcher list, e.g.
	// `namespace="ns",pod=~"a|b"`.
	LabelMatchers string
	// LabelValuesByName maps a label to the regex alternation of its
	// requested values (`a|b`), already escaped for use inside a PromQL
	// double-quoted string, e.g. `{pod=~"<<index .LabelValuesByName "pod">>"}`.
	// Only labels requested with =, == or in appear.
	LabelValuesByName map[string]string
	// GroupBy is the comma-joined list of labels to aggregate by.
	GroupBy string
	// GroupBySlice is the same list as a slice.
	GroupBySlice []string
}

var queryDataType = reflect.TypeFor[QueryData]()

// checkFields reports the first field reference in tree that QueryData cannot satisfy, such as
// `<<.Serise>>`: text/template only finds those when executing, so a typo used to pass loading
// and then fail every query of its rule. Where dot is QueryData (outside range and with) its
// fields are checked, and `$.X` everywhere; other dots and variables have types only execution
// knows, and are left alone.
func checkFields(tree *parse.Tree) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	return checkNode(tree.Root, true)
}

func checkNode(node parse.Node, dotIsData bool) error {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, child := range n.Nodes {
			if err := checkNode(child, dotIsData); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkPipe(n.Pipe, dotIsData)
	case *parse.TemplateNode:
		return checkPipe(n.Pipe, dotIsData)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, dotIsData, dotIsData)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode, dotIsData, false)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, dotIsData, false)
	}
	return nil
}

// checkBranch checks an if, range or with: its pipeline and else branch see the outer dot, its
// body sees bodyDotIsData.
func checkBranch(b *parse.BranchNode, dotIsData, bodyDotIsData bool) error {
	if err := checkPipe(b.Pipe, dotIsData); err != nil {
		return err
	}
	if err := checkNode(b.List, bodyDotIsData); err != nil {
		return err
	}
	return checkNode(b.ElseList, dotIsData)
}

func checkPipe(pipe *parse.PipeNode, dotIsData bool) error {
	if pipe == nil {
		return nil
	}
	for _, cmd := range pipe.Cmds {
		for _, arg := range cmd.Args {
			if err := checkArg(arg, dotIsData); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkArg(arg parse.Node, dotIsData bool) error {
	switch n := arg.(type) {
	case *parse.FieldNode:
		if dotIsData {
			return checkChain(n.Ident)
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			return checkChain(n.Ident[1:])
		}
	case *parse.ChainNode:
		return checkArg(n.Node, dotIsData)
	case *parse.PipeNode:
		return checkPipe(n, dotIsData)
	}
	return nil
}

// checkChain follows .A.B.C from QueryData: struct fields must exist, map values may be keyed by
// anything, and strings and slices have no fields.
func checkChain(idents []string) error {
	t := queryDataType
	for i, id := range idents {
		switch t.Kind() {
		case reflect.Struct:
			f, ok := t.FieldByName(id)
			if !ok || !f.IsExported() {
				return fmt.Errorf("unknown field .%s%s (fields: %s)", id, suggest(id), fieldList())
			}
			t = f.Type
		case reflect.Map:
			t = t.Elem()
		default:
			return fmt.Errorf(".%s: .%s is a %s and has no fields", strings.Join(idents, "."), strings.Join(idents[:i], "."), t.Kind())
		}
	}
	return nil
}

func fieldList() string {
	names := make([]string, queryDataType.NumField())
	for i := range names {
		names[i] = "." + queryDataType.Field(i).Name
	}
	return strings.Join(names, ", ")
}

// suggest names the field closest to a misspelt one, if any is close.
func suggest(id string) string {
	best, bestDist := "", 3
	for i := range queryDataType.NumField() {
		name := queryDataType.Field(i).Name
		if d := editDistance(strings.ToLower(id), strings.ToLower(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean ." + best + "?)"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
