//go:build tools

// Package protogen pins the protoc plugins that generate historyapi/grpcapi/metricpb; see
// generate.sh.
package protogen

import (
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
)
