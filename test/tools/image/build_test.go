package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestImageRunsKapacity builds the real kapacity binary, makes the image from it exactly as
// `make image` does, reads the image back from its OCI layout, checks what a runtime and a
// registry rely on (entrypoint, non-root user, labels, platform) and runs the binary extracted
// from the image's file system.
func TestImageRunsKapacity(t *testing.T) {
	dir := t.TempDir()
	const version, commit = "v0.0.0-imagetest", "abc1234"
	binary := filepath.Join(dir, "kapacity")
	build := exec.Command("go", "build", "-trimpath",
		"-ldflags", fmt.Sprintf("-X main.version=%s -X main.commit=%s", version, commit), "-o", binary, ".")
	build.Dir = filepath.Join("..", "..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kapacity: %v\n%s", err, out)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := Options{
		Binaries:       map[string]string{platform: binary},
		CACertificates: ca,
		Version:        version,
		Commit:         commit,
		Created:        created,
		Source:         "https://example.com/kapacity",
	}
	idx, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	layoutDir, archive := filepath.Join(dir, "layout"), filepath.Join(dir, "image.tar")
	if err := WriteLayout(idx, layoutDir, archive); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(archive); err != nil || info.Size() == 0 {
		t.Fatalf("archive %s missing or empty: %v", archive, err)
	}

	// Read back what was written, not the index in memory.
	read, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatalf("reading the layout: %v", err)
	}
	manifest, err := read.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 || manifest.Manifests[0].Platform == nil || manifest.Manifests[0].Platform.String() != platform {
		t.Fatalf("index manifests = %+v, want one for %s", manifest.Manifests, platform)
	}
	img, err := read.Image(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != "/kapacity" {
		t.Errorf("entrypoint = %q, want /kapacity", got)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532 (non-root)", cfg.Config.User)
	}
	if cfg.OS+"/"+cfg.Architecture != platform {
		t.Errorf("config platform = %s/%s, want %s", cfg.OS, cfg.Architecture, platform)
	}
	if !cfg.Created.Time.Equal(created) {
		t.Errorf("created = %s, want %s", cfg.Created.Time, created)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.source":   "https://example.com/kapacity",
		"org.opencontainers.image.licenses": "Apache-2.0",
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	files := extract(t, img, dir)
	for _, want := range []string{"kapacity", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "tmp"} {
		if _, ok := files[want]; !ok {
			t.Fatalf("image lacks %s; has %v", want, keys(files))
		}
	}
	if tmp := files["tmp"]; tmp.Typeflag != tar.TypeDir || tmp.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp: type %c mode %o, want a directory with mode 1777", tmp.Typeflag, tmp.Mode)
	}
	if !strings.Contains(string(readFile(t, filepath.Join(dir, "rootfs", "etc", "passwd"))), "nonroot:x:65532:65532") {
		t.Error("/etc/passwd has no nonroot user 65532")
	}
	out, err := exec.Command(filepath.Join(dir, "rootfs", "kapacity"), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("kapacity --version from the image: %v\n%s", err, out)
	}
	if want := "kapacity " + version + " (commit " + commit; !strings.HasPrefix(string(out), want) {
		t.Fatalf("kapacity --version = %q, want it to start with %q", out, want)
	}

	pushWithCrane(t, layoutDir, idx)

	// The same inputs give the same image: a rebuild changes no digest.
	again, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("rebuilding changed the index digest: %s then %s", d1, d2)
	}
}

// pushWithCrane pushes the layout with `crane push --index`, as the README says, to a registry
// served in this process, and pulls the index back by tag.
func pushWithCrane(t *testing.T, layoutDir string, want v1.ImageIndex) {
	t.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/kapacity:test"
	out, err := exec.Command("go", "run", "github.com/google/go-containerregistry/cmd/crane",
		"push", "--insecure", "--index", layoutDir, ref).CombinedOutput()
	if err != nil {
		t.Fatalf("crane push: %v\n%s", err, out)
	}
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(tag)
	if err != nil {
		t.Fatalf("pulling the pushed index: %v", err)
	}
	gotDigest, _ := got.Digest()
	wantDigest, _ := want.Digest()
	if gotDigest != wantDigest {
		t.Fatalf("pushed index digest %s, want %s", gotDigest, wantDigest)
	}
}

// extract unpacks the image's flattened file system into dir/rootfs and returns its headers.
func extract(t *testing.T, img v1.Image, dir string) map[string]*tar.Header {
	t.Helper()
	root := filepath.Join(dir, "rootfs")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]*tar.Header{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading the image's file system: %v", err)
		}
		files[hdr.Name] = hdr
		target := filepath.Join(root, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, data, os.FileMode(hdr.Mode)&0o755|0o200); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func keys(m map[string]*tar.Header) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
