//go:build tools

// crane is what the README tells users to push the image with; the image test runs it.
package main

import _ "github.com/google/go-containerregistry/cmd/crane"
