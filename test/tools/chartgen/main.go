package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/strvals"
)

const usage = `chartgen renders the Kapacity Helm chart with Helm's SDK.

  chartgen generate [-root DIR]
      copy deploy/crds and the default adapter config into the chart, and write the kustomize
      tree of deploy/ (kustomization.yaml, adapter/, manager/, components/) from the chart
  chartgen template [-root DIR] [-name NAME] [-namespace NS] [-f values.yaml] [-set k=v,...] [-include-crds]
      print the chart's objects, as helm template does
  chartgen lint [-root DIR] [-f values.yaml] [-set k=v,...]
      helm lint (strict: warnings fail too)
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chartgen:", err)
		os.Exit(1)
	}
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("a command is required: generate, template or lint")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	root := fs.String("root", ".", "the repository's root folder")
	name := fs.String("name", "kapacity", "release name")
	namespace := fs.String("namespace", "kapacity-system", "release namespace")
	includeCRDs := fs.Bool("include-crds", false, "print the CRDs of crds/ first")
	var valueFiles, sets stringList
	fs.Var(&valueFiles, "f", "values file (repeatable)")
	fs.Var(&sets, "set", "values as k=v,k2=v2 (repeatable; helm --set syntax)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	values, err := userValues(valueFiles, sets)
	if err != nil {
		return err
	}
	dir := filepath.Join(*root, chartDir)
	switch args[0] {
	case "generate":
		return Generate(*root)
	case "template":
		ch, err := LoadChart(dir)
		if err != nil {
			return err
		}
		objs, err := Render(ch, Release{Name: *name, Namespace: *namespace}, values)
		if err != nil {
			return err
		}
		if *includeCRDs {
			for _, crd := range ch.CRDObjects() {
				fmt.Printf("---\n# Source: %s\n%s", crd.Filename, crd.File.Data)
			}
		}
		for _, o := range objs {
			fmt.Printf("---\n# Source: %s\n%s", o.Template, o.Text)
		}
		return nil
	case "lint":
		return Lint(dir, *namespace, values)
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q: use generate, template or lint", args[0])
	}
}

// userValues merges values files and --set values, in that order, as helm does.
func userValues(files, sets []string) (map[string]any, error) {
	values := map[string]any{}
	for _, f := range files {
		v, err := common.ReadValuesFile(f)
		if err != nil {
			return nil, err
		}
		values = mergeMaps(values, v)
	}
	for _, s := range sets {
		if err := strvals.ParseInto(s, values); err != nil {
			return nil, fmt.Errorf("-set %s: %w", s, err)
		}
	}
	return values, nil
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bv, ok := v.(map[string]any); ok {
			if av, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(av, bv)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Lint runs helm lint's rules on the chart in dir; any warning or error fails (helm lint --strict).
func Lint(dir, namespace string, values map[string]any) error {
	result := lint.RunAll(dir, values, namespace, lint.WithKubeVersion(nil))
	var errs []error
	for _, m := range result.Messages {
		if m.Severity >= support.WarningSev {
			errs = append(errs, m)
		}
	}
	return errors.Join(errs...)
}
