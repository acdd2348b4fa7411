// Command image builds Kapacity's OCI image without a container daemon: `make image` runs it with
// the static binaries it built for each platform and writes an OCI layout and an OCI archive.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var (
		o        Options
		binaries = fs.String("binaries", "", "comma-separated platform=path pairs, e.g. linux/amd64=bin/kapacity-linux-amd64")
		created  = fs.Int64("created", 0, "creation time in Unix seconds (the commit's, for reproducible images); 0: now")
		dir      = fs.String("layout", "bin/image", "folder of the OCI image layout to write")
		archive  = fs.String("archive", "bin/kapacity-image.tar", "OCI archive (the layout in one tar) to write")
	)
	fs.StringVar(&o.CACertificates, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates to include")
	fs.StringVar(&o.Version, "version", "dev", "the org.opencontainers.image.version label")
	fs.StringVar(&o.Commit, "commit", "unknown", "the org.opencontainers.image.revision label")
	fs.StringVar(&o.Source, "source", "https://github.com/kapacitystack/kapacity", "the org.opencontainers.image.source label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Binaries = map[string]string{}
	for _, pair := range strings.Split(*binaries, ",") {
		platform, path, ok := strings.Cut(pair, "=")
		if !ok || platform == "" || path == "" {
			return fmt.Errorf("--binaries: %q is not platform=path", pair)
		}
		o.Binaries[platform] = path
	}
	o.Created = time.Now().UTC().Truncate(time.Second)
	if *created > 0 {
		o.Created = time.Unix(*created, 0).UTC()
	}
	idx, err := Build(o)
	if err != nil {
		return err
	}
	if err := WriteLayout(idx, *dir, *archive); err != nil {
		return err
	}
	return describe(idx, *archive)
}

// describe prints the digest and size per platform, the figures the README quotes.
func describe(idx v1.ImageIndex, archive string) error {
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (index %s)\n", archive, digest)
	manifest, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range manifest.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		var compressed int64
		for _, l := range layers {
			size, err := l.Size()
			if err != nil {
				return err
			}
			compressed += size
		}
		fmt.Printf("  %s: %s, layers %s compressed\n", d.Platform, d.Digest, strconv.FormatFloat(float64(compressed)/(1<<20), 'f', 1, 64)+" MiB")
	}
	return nil
}
