package kubeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func writeKubeconfig(t *testing.T, dir, server string) string {
	t.Helper()
	path := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_").Replace(server))
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + server + `"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The precedence of controller-runtime: --kubeconfig, then $KUBECONFIG, then in-cluster, then
// ~/.kube/config.
func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	flagFile := writeKubeconfig(t, dir, "https://flag.example:6443")
	envFile := writeKubeconfig(t, dir, "https://env.example:6443")
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	homeFile := writeKubeconfig(t, dir, "https://home.example:6443")
	if err := os.Rename(homeFile, filepath.Join(home, ".kube", "config")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, flag, env, inCluster, want, wantErr string
		noHomeFile                                bool
	}{
		{name: "the flag wins over everything", flag: flagFile, env: envFile, inCluster: "10.0.0.1", want: "https://flag.example:6443"},
		{name: "$KUBECONFIG wins over in-cluster", env: envFile, inCluster: "10.0.0.1", want: "https://env.example:6443"},
		{name: "in-cluster wins over ~/.kube/config", inCluster: "10.0.0.1", want: "https://10.0.0.1:443"},
		{name: "~/.kube/config last", want: "https://home.example:6443"},
		{name: "a missing flag file is an error naming it", flag: filepath.Join(dir, "missing"), wantErr: "--kubeconfig " + filepath.Join(dir, "missing")},
		{name: "nothing at all says what to do", noHomeFile: true, wantErr: "no cluster to talk to: pass --kubeconfig"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.env)
			t.Setenv("HOME", home)
			if tc.noHomeFile {
				t.Setenv("HOME", t.TempDir())
			}
			inCluster := func() (*rest.Config, error) {
				if tc.inCluster == "" {
					return nil, rest.ErrNotInCluster
				}
				return &rest.Config{Host: "https://" + tc.inCluster + ":443"}, nil
			}
			c, _, err := loadFirst(tc.flag, "", inCluster)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Host != tc.want {
				t.Fatalf("host %q, want %q", c.Host, tc.want)
			}
		})
	}
}

// A context is chosen by name, and its namespace comes with it.
func TestLoadContext(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: a, cluster: {server: "https://a.example"}}, {name: b, cluster: {server: "https://b.example"}}]
users: [{name: u, user: {token: t}}]
contexts:
- {name: first, context: {cluster: a, user: u}}
- {name: second, context: {cluster: b, user: u, namespace: team-b}}
current-context: first
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ context, host, ns string }{
		{"", "https://a.example", "default"},
		{"second", "https://b.example", "team-b"},
	} {
		c, ns, err := LoadContext(path, tc.context)
		if err != nil {
			t.Fatal(err)
		}
		if c.Host != tc.host || ns != tc.ns {
			t.Errorf("context %q: host %q namespace %q, want %q %q", tc.context, c.Host, ns, tc.host, tc.ns)
		}
	}
	if _, _, err := LoadContext(path, "missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing context: %v, want an error naming it", err)
	}
}
