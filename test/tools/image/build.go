package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRootUID is the image's user: the "nonroot" user of distroless images, so that a
// securityContext with runAsNonRoot: true passes without naming a user.
const NonRootUID = 65532

// BinaryPath is where the kapacity binary sits in the image; it is the entrypoint.
const BinaryPath = "/kapacity"

// Options describe one image build.
type Options struct {
	// Binaries maps a platform ("linux/amd64") to a static kapacity binary built for it.
	Binaries map[string]string
	// CACertificates is a PEM bundle copied to /etc/ssl/certs/ca-certificates.crt, so that the
	// adapter can reach a Prometheus behind a public CA.
	CACertificates string
	// Version and Commit become the OCI labels org.opencontainers.image.version and .revision.
	Version, Commit string
	// Created is the image's creation time (the commit's, for reproducible builds).
	Created time.Time
	// Source is the org.opencontainers.image.source label.
	Source string
}

// Labels are the OCI annotations of the image config.
func (o Options) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "kapacity",
		"org.opencontainers.image.description": "Prometheus-native metrics adapter and predictive autoscaler for Kubernetes",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.revision":    o.Commit,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
	}
}

// Build assembles a multi-platform OCI image index from nothing but local files: a base layer
// (users, CA certificates, /tmp) shared by every platform and one layer with each platform's
// binary. Nothing is pulled from a registry.
func Build(o Options) (v1.ImageIndex, error) {
	if len(o.Binaries) == 0 {
		return nil, fmt.Errorf("no binaries: give at least one platform")
	}
	caPEM, err := os.ReadFile(o.CACertificates)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates: %w", err)
	}
	base, err := layerOf(o.Created, baseFiles(caPEM))
	if err != nil {
		return nil, fmt.Errorf("building the base layer: %w", err)
	}
	platforms := make([]string, 0, len(o.Binaries))
	for p := range o.Binaries {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		platform, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		img, err := o.platformImage(base, platform, o.Binaries[p])
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: platform},
		})
	}
	return idx, nil
}

func (o Options) platformImage(base v1.Layer, platform *v1.Platform, binary string) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	binLayer, err := layerOf(o.Created, []file{{name: BinaryPath[1:], mode: 0o555, data: bin}})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, binLayer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = platform.OS, platform.Architecture, platform.Variant
	cfg.Created = v1.Time{Time: o.Created}
	cfg.Author = "Kapacity"
	cfg.Config = v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
		WorkingDir: "/",
		Env: []string{
			"PATH=/",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		Labels: o.Labels(),
	}
	return mutate.ConfigFile(img, cfg)
}

// file is one entry of a layer: a directory or a regular file.
type file struct {
	name string
	mode int64
	dir  bool
	data []byte
}

func baseFiles(caPEM []byte) []file {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID)
	return []file{
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/ssl", mode: 0o755, dir: true},
		{name: "etc/ssl/certs", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caPEM},
		{name: "home", mode: 0o755, dir: true},
		{name: "home/nonroot", mode: 0o700, dir: true},
		// Writable by anyone, sticky, as every /tmp: the adapter keeps its self-signed
		// certificates there when the root file system is read-only and no volume is mounted.
		{name: "tmp", mode: 0o1777, dir: true},
	}
}

// layerOf writes files into an uncompressed tar with fixed times and owners (root, except the
// nonroot user's home), so the same inputs give the same digest.
func layerOf(modTime time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, ModTime: modTime, Format: tar.FormatPAX}
		if f.name == "home/nonroot" {
			hdr.Uid, hdr.Gid = NonRootUID, NonRootUID
		}
		if f.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, f.name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes idx as an OCI image layout in dir (replacing what was there) and as an
// OCI archive (the layout in one tar) at archive, the form skopeo's oci-archive: transport reads.
func WriteLayout(idx v1.ImageIndex, dir, archive string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	return tarDir(dir, archive)
}

func tarDir(dir, archive string) error {
	out, err := os.Create(archive)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
