module github.com/kapacitystack/kapacity/test/tools/protogen

// protoc-gen-go and protoc-gen-go-grpc, pinned apart from the product module. protoc-gen-go must
// not be newer than the google.golang.org/protobuf runtime in the root go.mod, and
// protoc-gen-go-grpc's generated code must be supported by the root module's google.golang.org/grpc.
go 1.26

require (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.5.1
	google.golang.org/protobuf v1.36.8
)
