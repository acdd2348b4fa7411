package server

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
)

// TestHelpIsSectioned: --help prints every flag once, in sections ordered as a
// prometheus-adapter user reads them, none of custom-metrics-apiserver's generic flags lost.
func TestHelpIsSectioned(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCommand()
	cmd.SetArgs([]string{"--help"})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	var sections []string
	for _, m := range regexp.MustCompile(`(?m)^(\S.*) flags:$`).FindAllStringSubmatch(help, -1) {
		sections = append(sections, m[1])
	}
	want := []string{"Prometheus", "Metrics discovery", "History API", "Kapacity's gRPC ProviderService", "Serving certificate",
		"Secure serving", "Authentication", "Authorization", "Audit", "Features", "Kubernetes client"}
	if !slices.Equal(sections, want) {
		t.Errorf("sections %q, want %q", sections, want)
	}
	printed := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(help, -1) {
		printed[m[1]]++
	}
	generic := &basecmd.AdapterBase{FlagSet: pflag.NewFlagSet("generic", pflag.ContinueOnError)}
	generic.InstallFlags()
	all := pflag.NewFlagSet("all", pflag.ContinueOnError)
	newOptions().AddFlags(all)
	generic.FlagSet.VisitAll(func(f *pflag.Flag) {
		if all.Lookup(f.Name) == nil {
			t.Errorf("custom-metrics-apiserver's --%s is not accepted", f.Name)
		}
	})
	for _, fs := range []*pflag.FlagSet{generic.FlagSet, all} {
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Deprecated != "" {
				return // pflag does not print them
			}
			if printed[f.Name] != 1 {
				t.Errorf("--%s printed %d times, want once", f.Name, printed[f.Name])
			}
		})
	}
	for _, upstream := range []string{"prometheus-url", "prometheus-auth-incluster", "prometheus-auth-config", "disable-http2", "metrics-max-age", "lister-kubeconfig", "tls-cipher-suites"} {
		if !strings.Contains(help, "--"+upstream+" ") {
			t.Errorf("--help lacks --%s", upstream)
		}
	}
}

// TestDisableHTTP2: prometheus-adapter's --disable-http2 turns HTTP/2 off on the secure port.
func TestDisableHTTP2(t *testing.T) {
	if o := parsed(t); o.DisableHTTP2 {
		t.Error("HTTP/2 off by default")
	}
	if o := parsed(t, "--disable-http2"); !o.DisableHTTP2 {
		t.Error("--disable-http2 not parsed")
	}
}
